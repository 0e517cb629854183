import Foundation
import Logging

/// `kiln serve`'s log on stderr, one line per event, starting with the event:
///
///     tftp: sent client=192.0.2.17:2070 bytes=42200 file=pxelinux.0 time=2026-12-06T03:08:44Z
///     lab: web-01 deploy failed client=192.0.2.21 reason="disk too small" level=warning time=...
///
/// The metadata follows as `key=value` (the client first, then by name; a value with a space or a
/// quote in double quotes), then the level when it is not `info`, then the time in UTC. What a
/// client chose (file names, paths) is already escaped by the servers.
struct ServeLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line = Self.line(
            message: "\(event.message)", level: event.level,
            metadata: metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }), time: Date())
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func line(message: String, level: Logger.Level, metadata: Logger.Metadata, time: Date) -> String {
        var line = message
        let keys = metadata.keys.sorted { left, right in
            left == "client" ? right != "client" : right == "client" ? false : left < right
        }
        for key in keys {
            guard let value = metadata[key] else { continue }
            line += " \(key)=\(quoted("\(value)"))"
        }
        if level != .info { line += " level=\(level.rawValue)" }
        line += " time=\(time.formatted(.iso8601))"
        return line
    }

    /// A value as it can be read back: bare when it has no space, quote or equals sign, else in
    /// double quotes, a quote inside escaped as `\"`. Backslashes are left alone: what a client
    /// chose reaches the log already escaped (`LogText.escape`: `\n`, `\xNN`, `\\`, `\"`).
    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return value }
        var out = "\""
        var escaped = false
        for character in value {
            if character == "\"" && !escaped { out += "\\" }
            out.append(character)
            escaped = character == "\\" && !escaped
        }
        return out + "\""
    }
}
