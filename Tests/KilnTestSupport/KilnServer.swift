import Foundation
import KilnSupport

/// A `kiln serve` process, stopped at the end of the test.
package final class KilnServer: Sendable {
    package let process: Subprocess
    package let log: String
    package let port: Int
    /// The HTTP port, when started with `http: true`.
    package let httpPort: Int?

    /// Starts `kiln serve --tftp-root ROOT --tftp HOST:0 --http off EXTRA...`, in `namespace` if given,
    /// and waits for the line that names the bound port.
    package init(
        root: String, host: String = "127.0.0.1", http: Bool = false, extra: [String] = [], namespace: String? = nil,
        wrapper: [String] = [], logDir: String
    ) async throws {
        log = logDir + "/kiln-\(UUID().uuidString.prefix(8)).log"
        let address = host.contains(":") ? "[\(host)]:0" : "\(host):0"
        var argv =
            [Tools.kiln, "serve", "--tftp-root", root, "--tftp", address, "--http", http ? address : "off"] + extra
        argv = wrapper + argv
        if let namespace { argv = ["ip", "netns", "exec", namespace] + argv }
        process = Subprocess(argv, output: .logFile(log))
        try process.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let port = Self.port(after: "kiln: TFTP on ", in: text),
                !http || Self.port(after: "kiln: HTTP on ", in: text) != nil
            {
                self.port = port
                self.httpPort = http ? Self.port(after: "kiln: HTTP on ", in: text) : nil
                return
            }
            if let ended = process.poll() {
                throw SubprocessError(command: process.commandLine, reason: "ended with \(ended): \(text)")
            }
            guard ContinuousClock.now < deadline else {
                await process.stop()
                throw SubprocessError(command: process.commandLine, reason: "did not report its port: \(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    package var isRunning: Bool { process.poll() == nil }

    private static func port(after prefix: String, in text: String) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
            let portText = line.dropFirst(prefix.count).split(separator: " ").first?.split(separator: ":").last
        else { return nil }
        return Int(portText)
    }

    package var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    package func stop() async { await process.stop() }
}

/// Runs `body` with a `kiln serve` process and stops the process afterwards, whatever happens.
package func withKilnServer<T>(
    root: String, host: String = "127.0.0.1", http: Bool = false, extra: [String] = [], namespace: String? = nil,
    wrapper: [String] = [], logDir: String, _ body: (KilnServer) async throws -> T
) async throws -> T {
    let server = try await KilnServer(
        root: root, host: host, http: http, extra: extra, namespace: namespace, wrapper: wrapper, logDir: logDir)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Whether one line of `kiln serve`'s log holds every one of `parts` (an event and its `key=value`s).
package func logHasLine(_ log: String, _ parts: String...) -> Bool {
    log.split(separator: "\n").contains { line in parts.allSatisfy { line.contains($0) } }
}
