import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Two network namespaces made by a test and joined by a veth pair: kiln's side (`veth-kiln`,
/// 192.0.2.1/24, TEST-NET-1) and a client's side (`veth-host`, no address). Nothing leaves them.
package final class LabNetwork {
    package let server: NetworkNamespace
    package let client: NetworkNamespace

    package init() async throws {
        server = try await NetworkNamespace()
        do {
            client = try await NetworkNamespace()
        } catch {
            await server.delete()
            throw error
        }
        let commands: [[String]] = [
            [
                "ip", "link", "add", "veth-kiln", "netns", server.name, "type", "veth", "peer", "name", "veth-host",
                "netns", client.name,
            ],
            server.exec(["ip", "addr", "add", "192.0.2.1/24", "dev", "veth-kiln"]),
            server.exec(["ip", "link", "set", "veth-kiln", "up"]),
            client.exec(["ip", "link", "set", "veth-host", "up"]),
        ]
        do {
            for argv in commands { try await Subprocess(argv).run() }
        } catch {
            await delete()
            throw error
        }
    }

    /// Gives the client's interface another MAC address (another machine, as DHCP sees it).
    package func setClientMAC(_ mac: String) async throws {
        try await Subprocess(client.exec(["ip", "link", "set", "veth-host", "down"])).run()
        try await Subprocess(client.exec(["ip", "addr", "flush", "dev", "veth-host"])).run()
        try await Subprocess(client.exec(["ip", "link", "set", "veth-host", "address", mac])).run()
        try await Subprocess(client.exec(["ip", "link", "set", "veth-host", "up"])).run()
    }

    package func delete() async {
        await client.delete()
        await server.delete()
    }
}

/// A `kiln serve --config` process, stopped at the end of the test.
package final class LabKiln: Sendable {
    package let process: Subprocess
    package let log: String

    /// Starts kiln with the lab file (in `namespace` if given) and waits for its "serving" line.
    package init(config: String, extra: [String] = [], namespace: NetworkNamespace?, logDir: String) async throws {
        log = logDir + "/kiln-lab-\(UUID().uuidString.prefix(8)).log"
        let argv = [Tools.kiln, "serve", "--config", config] + extra
        process = Subprocess(namespace?.exec(argv) ?? argv, output: .logFile(log))
        try process.start()
        let deadline = ContinuousClock.now + .seconds(60)
        while !logText.contains("kiln: serving ") {
            if let ended = process.poll() {
                throw SubprocessError(command: process.commandLine, reason: "ended with \(ended): \(logText)")
            }
            guard ContinuousClock.now < deadline else {
                await process.stop()
                throw SubprocessError(command: process.commandLine, reason: "did not start: \(logText)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    package var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// The port of a server kiln reported (`kiln: TFTP on 127.0.0.1:PORT`).
    package func port(_ server: String) -> Int? {
        let prefix = "kiln: \(server) on "
        guard let line = logText.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return line.split(separator: ":").last.flatMap { Int($0) }
    }

    package func stop() async { await process.stop() }
}

extension NetworkNamespace {
    /// A namespace with a bridge `br-lab` (kiln's side, 192.0.2.1/24) and a tap device on it for each
    /// machine the test boots.
    package static func bridged(taps: [String]) async throws -> NetworkNamespace {
        let namespace = try await NetworkNamespace()
        var commands: [[String]] = [
            ["ip", "link", "add", "br-lab", "type", "bridge"],
            ["ip", "addr", "add", "192.0.2.1/24", "dev", "br-lab"],
            ["ip", "link", "set", "br-lab", "up"],
        ]
        for tap in taps {
            commands += [
                ["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
                ["ip", "link", "set", tap, "master", "br-lab"],
                ["ip", "link", "set", tap, "up"],
            ]
        }
        do {
            for argv in commands { try await Subprocess(namespace.exec(argv)).run() }
        } catch {
            await namespace.delete()
            throw error
        }
        return namespace
    }
}
