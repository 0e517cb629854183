import Foundation
import KilnSupport
import KilnTestSupport
import Testing

/// TFTP answers that cannot leave kiln's network namespace (an nftables rule makes every send to the
/// client fail with EPERM) cost the client its request, not the server: a refusal from the server's port
/// is logged as not sent, and a transfer's packets are lost on their own socket.
@Suite(
    "kiln serve over TFTP: answers that cannot be sent", .serialized,
    .requires(.root, .program("ip"), .program("nft"), .program("curl"))
)
struct TFTPSendFailureTests {
    @Test func aRefusalOrATransferThatCannotBeSentEndsThatRequestOnly() async throws {
        let folder = try TemporaryFolder()
        let file = try folder.randomFile("root/small.bin", size: 64 << 10)
        let network = try await LabNetwork()
        do {
            try await Subprocess(network.client.exec(["ip", "addr", "add", "192.0.2.50/24", "dev", "veth-host"])).run()
            try await withKilnServer(
                root: folder.path + "/root", host: "192.0.2.1", namespace: network.server.name, logDir: folder.path
            ) { kiln in
                func fetch(_ name: String) async throws -> (status: Subprocess.Termination, output: String) {
                    let argv = network.client.exec([
                        "curl", "-sS", "--max-time", "3", "-o", folder.path + "/out.bin",
                        "tftp://192.0.2.1:\(kiln.port)/\(name)",
                    ])
                    let (status, output) = try await runTool(argv, timeout: 20)
                    return (status, output)
                }
                try await network.server.drop(["ip", "daddr", "192.0.2.50"], on: .output)
                // The refusal goes out from the server's port, the file from a transfer's own port.
                #expect(try await fetch("missing.bin").status == .exited(28), "curl timed out")
                #expect(try await fetch("small.bin").status == .exited(28), "curl timed out")
                let log = kiln.logText
                #expect(
                    log.contains("error=\"sendto: Operation not permitted") && log.contains("tftp: reply not sent"),
                    "\(log.suffix(1500))")
                #expect(kiln.isRunning, "kiln serve still runs: \(log.suffix(1500))")

                try await network.server.allow(.output)
                let fetched = try await fetch("small.bin")
                #expect(fetched.status.succeeded, "\(fetched.output)")
                #expect(try await sha256(folder.path + "/out.bin") == (try await sha256(file)))
                let refused = try await fetch("missing.bin")
                // curl's exit status 68: the server said "file not found".
                #expect(refused.status == .exited(68), "\(refused.output)")
            }
        } catch {
            await network.delete()
            throw error
        }
        await network.delete()
    }
}
