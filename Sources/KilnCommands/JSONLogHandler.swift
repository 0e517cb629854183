import Foundation
import Logging

/// `kiln serve --json`: each log line as one JSON object on stdout, `{"event": "log", "level": ...,
/// "message": ..., "time": ...}` plus the line's metadata, so that a program can follow the server.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String
    let console: Console

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).mapValues { "\($0)" }
        fields["level"] = event.level.rawValue
        fields["message"] = "\(event.message)"
        fields["logger"] = label
        fields["time"] = ISO8601DateFormatter().string(from: Date())
        console.event("log", fields)
    }
}
