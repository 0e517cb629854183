import Foundation
import KilnSupport
import KilnTestSupport
import Testing

/// Transfers through a lossy loopback: a network namespace made by the test, where an nftables rule
/// (`numgen random`, which needs no netem in the kernel) drops 10% of the UDP packets on its `lo`, both
/// directions.
@Suite(
    "kiln serve over TFTP with 10% packet loss", .serialized,
    .requires(.program("tftp"), .program("atftp"), .program("curl"), .program("sha256sum")),
    .requires(.root, .program("ip"), .program("nft"))
)
struct TFTPLossTests {
    @Test func transfersCompleteCorrectlyDespiteLoss() async throws {
        let folder = try TemporaryFolder()
        let small = try folder.randomFile("root/128k.bin", size: 128 * 1024)
        let large = try folder.randomFile("root/1m.bin", size: 1024 * 1024)
        let namespace = try await NetworkNamespace()
        do {
            try await namespace.dropTenPercentOfUDP()
            try await withKilnServer(root: folder.path + "/root", namespace: namespace.name, logDir: folder.path) {
                server in
                let port = "\(server.port)"
                let out = folder.path + "/out"
                let runs: [(String, [String])] = [
                    (small, ["tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "128k.bin", out]),
                    (
                        large,
                        [
                            "atftp", "--option", "timeout 1", "--option", "blksize 1468", "--option", "windowsize 16",
                            "-g", "-r", "1m.bin",
                            "-l", out, "127.0.0.1", port,
                        ]
                    ),
                    (small, ["curl", "-sS", "-o", out, "--tftp-blksize", "1468", "tftp://127.0.0.1:\(port)/128k.bin"]),
                ]
                for (source, argv) in runs {
                    try? FileManager.default.removeItem(atPath: out)
                    let (status, output) = try await runTool(namespace.exec(argv), timeout: 180)
                    #expect(status.succeeded, "\(argv.joined(separator: " ")): \(output.suffix(400))")
                    #expect(try await sha256(out) == (try await sha256(source)), "\(argv.joined(separator: " "))")
                }
                #expect(server.isRunning)
            }
        } catch {
            await namespace.delete()
            throw error
        }
        await namespace.delete()
    }

    /// atftp aborts when an OACK comes a second time, and repeats its own packets only every 5 s, whatever
    /// `timeout` it negotiated. A lost ACK 0 must be answered by atftp's repeated ACK, not by a repeated
    /// OACK; a lost OACK by atftp's repeated RRQ. Each packet is dropped for 3 s, so that atftp's first try
    /// is lost and its second, at 5 s, goes through.
    @Test(arguments: ["ACK 0", "OACK"])
    func atftpCompletesWhenTheOptionExchangeLosesAPacket(lost: String) async throws {
        // The first bytes of the UDP payload: opcode 4 and block 0, or opcode 6.
        let payload = lost == "OACK" ? ["@th,64,16", "6"] : ["@th,64,32", "0x00040000"]
        let match = ["meta", "l4proto", "udp"] + payload
        let folder = try TemporaryFolder()
        let file = try folder.randomFile("root/256k.bin", size: 256 * 1024)
        let namespace = try await NetworkNamespace()
        do {
            try await withKilnServer(root: folder.path + "/root", namespace: namespace.name, logDir: folder.path) {
                server in
                let out = folder.path + "/out"
                let argv = [
                    "atftp", "--option", "timeout 1", "--option", "blksize 1468", "--option", "windowsize 4",
                    "-g", "-r", "256k.bin", "-l", out, "127.0.0.1", "\(server.port)",
                ]
                try await namespace.drop(match, on: .input)
                let command = namespace.exec(argv)
                let client = Task { try await runTool(command, timeout: 60) }
                try await Task.sleep(for: .seconds(3))
                try await namespace.allow(.input)
                let (status, output) = try await client.value
                #expect(status.succeeded, "\(lost) lost: \(output.suffix(400))")
                #expect(try await sha256(out) == (try await sha256(file)), "\(lost) lost")
            }
        } catch {
            await namespace.delete()
            throw error
        }
        await namespace.delete()
    }
}
