import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

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
