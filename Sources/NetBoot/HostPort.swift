/// An address and port as written on kiln's command line and in lab files: `ADDR:PORT`, `[V6ADDR]:PORT`,
/// `:PORT` (every address) or `ADDR` (the default port).
package struct HostPort: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// - Parameters:
    ///   - text: the address as written.
    ///   - defaultHost: the host when `text` names none (`:69`).
    ///   - defaultPort: the port when `text` names none.
    /// - Throws: `NetBootError(.configuration)` naming `text`.
    package init(parsing text: String, defaultHost: String = "::", defaultPort: Int) throws {
        var host = text
        var port = defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw NetBootError(.configuration, "address '\(text)' has '[' without ']'")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else {
                    throw NetBootError(.configuration, "address '\(text)' has a bad port")
                }
                port = value
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else {
                throw NetBootError(.configuration, "address '\(text)' has a bad port")
            }
            port = value
        }
        if host.isEmpty { host = defaultHost }
        guard (0...65535).contains(port) else {
            throw NetBootError(.configuration, "port \(port) in '\(text)' is outside 0...65535")
        }
        self.host = host
        self.port = port
    }

    package var description: String { HostPort.format(host, port) }

    static func format(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
