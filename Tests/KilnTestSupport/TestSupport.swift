import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Programs the tests use as real peers, looked up once.
package enum Tools {
    package static func has(_ program: String) -> Bool {
        let path = Subprocess.minimalEnvironment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(program)", X_OK) == 0 }
    }

    package static let tftpClients = has("tftp") && has("atftp") && has("curl") && has("sha256sum")
    /// Network namespaces need root and iproute2.
    package static let namespaces: Bool = getuid() == 0 && has("ip")

    /// The `kiln` executable beside the test bundle (`swift build --build-tests` builds both).
    package static let kiln: String = {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary may sit inside a .xctest bundle folder.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("kiln").path
    }()
}

/// A fresh folder removed at the end of the test.
package final class TemporaryFolder: Sendable {
    package let url: URL
    package var path: String { url.path }

    package init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-netboot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `size` pseudo-random bytes (fixed seed per name) to `name` and returns its path.
    @discardableResult
    package func randomFile(_ name: String, size: Int) throws -> String {
        let path = url.appendingPathComponent(name).path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(name.utf8.count + size)
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let count = min(remaining, chunk.count)
            chunk.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for i in 0..<(count + 7) / 8 where i < words.count {
                    // xorshift64*: fast, and incompressible enough for a transfer test
                    state ^= state >> 12
                    state ^= state << 25
                    state ^= state >> 27
                    words[i] = state &* 0x2545_F491_4F6C_DD1D
                }
            }
            try handle.write(contentsOf: chunk[0..<count])
            remaining -= count
        }
        return path
    }

    package func file(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Runs a program to its end (killed after `timeout` seconds) and returns its exit status and output.
@discardableResult
package func runTool(_ arguments: [String], timeout: Int = 120) async throws -> (
    status: Subprocess.Termination, output: String
) {
    let (status, output) = try await Subprocess.output(["timeout", "-k", "5", "\(timeout)"] + arguments)
    return (status, output)
}

package func sha256(_ path: String) async throws -> String {
    let (_, output) = try await Subprocess.output(["sha256sum", path])
    return String(output.prefix(64))
}

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

/// A network namespace with only `lo` up, deleted at the end.
package final class NetworkNamespace {
    package let name: String

    package init() async throws {
        name = "kilntest\(getpid() % 100000)x\(UInt16.random(in: 0...UInt16.max))"
        try await Subprocess(["ip", "netns", "add", name]).run()
        try await Subprocess(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]).run()
    }

    package func exec(_ arguments: [String]) -> [String] { ["ip", "netns", "exec", name] + arguments }

    /// Drops 10% of the UDP packets arriving at a socket in the namespace (on input: a drop on output would
    /// make the sender's sendto fail with EPERM, unlike a loss), except ACK 0. atftp cannot survive losing
    /// ACK 0 twice in a row from any server that repeats its OACK (tftpd-hpa, dnsmasq, kiln), and GRUB
    /// cannot survive a server that does not; the loss of one ACK 0 has a test of its own.
    package func dropTenPercentOfUDP() async throws {
        let rules = """
            table inet kiln_loss {
              chain in {
                type filter hook input priority 0; policy accept;
                meta l4proto udp @th,64,32 0x00040000 accept
                meta l4proto udp numgen random mod 100 < 10 drop
              }
            }
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).nft").path
        try Data(rules.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await Subprocess(exec(["nft", "-f", file])).run()
    }

    /// Where a rule of `drop(_:on:)` takes packets.
    package enum Hook: String {
        /// Arriving at a socket in the namespace: a loss, as on a wire.
        case input
        /// Leaving a socket: the sender's sendmsg(2) fails with EPERM.
        case output
    }

    /// Drops what the nftables `match` selects (`udp sport 67`) at `hook`, until `allow(_:)`.
    package func drop(_ match: [String], on hook: Hook) async throws {
        let table = ["inet", "kiln_block_\(hook.rawValue)"]
        try await Subprocess(exec(["nft", "add", "table"] + table)).run()
        try await Subprocess(
            exec(
                ["nft", "add", "chain"] + table + [
                    "filter", "{", "type", "filter", "hook", hook.rawValue, "priority", "0", ";", "}",
                ])
        ).run()
        try await Subprocess(exec(["nft", "add", "rule"] + table + ["filter"] + match + ["drop"])).run()
    }

    /// Removes the rules of `drop(_:on:)` at `hook`.
    package func allow(_ hook: Hook) async throws {
        try await Subprocess(exec(["nft", "delete", "table", "inet", "kiln_block_\(hook.rawValue)"])).run()
    }

    package func delete() async {
        // End whatever still runs in it (only what this test started), then remove it.
        if let (_, pids) = try? await Subprocess.output(["ip", "netns", "pids", name]) {
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        try? await Subprocess(["ip", "netns", "del", name]).run()
    }
}

/// Whether one line of `kiln serve`'s log holds every one of `parts` (an event and its `key=value`s).
package func logHasLine(_ log: String, _ parts: String...) -> Bool {
    log.split(separator: "\n").contains { line in parts.allSatisfy { line.contains($0) } }
}
