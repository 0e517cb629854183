import Foundation
import KilnSupport
import Testing

/// Transfers through a lossy loopback: a network namespace made by the test, where 10% of the UDP packets
/// on its `lo` are dropped, both directions: by tc netem where the kernel has it, otherwise by an nftables
/// rule (`numgen random`), as on kernels built without CONFIG_NET_SCH_NETEM.
@Suite(
    "kiln serve over TFTP with 10% packet loss", .serialized,
    .enabled(if: Tools.tftpClients, "needs tftp-hpa, atftp and curl"),
    .enabled(if: Tools.namespaces, "needs root, iproute2, and tc netem or nftables for a lossy network namespace")
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
}
