import Foundation
import KilnTestSupport
import Testing

/// `kiln serve` against real TFTP clients (tftp-hpa, atftp, curl) and hand-made packets, on loopback.
@Suite(
    "kiln serve over TFTP", .serialized,
    .requires(.program("tftp"), .program("atftp"), .program("curl"), .program("sha256sum")))
struct TFTPServerTests {
    private static let kib = 1024
    private static let mib = 1024 * 1024

    @Test func realClientsFetchFilesWithMatchingSHA256() async throws {
        let folder = try TemporaryFolder()
        let root = folder.path + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let oneKiB = try folder.randomFile("root/1k.bin", size: Self.kib)
        let fiveMiB = try folder.randomFile("root/5m.bin", size: 5 * Self.mib)
        // 100 MiB at 512-byte blocks is 204801 blocks: the 16-bit block number wraps three times.
        let hundredMiB = try folder.randomFile("root/100m.bin", size: 100 * Self.mib)
        try await withKilnServer(root: root, logDir: folder.path) { server in
            let port = "\(server.port)"
            let out = folder.path + "/out"

            let runs: [(String, [String])] = [
                (oneKiB, ["tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "1k.bin", out]),
                (fiveMiB, ["tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "5m.bin", out]),
                (oneKiB, ["atftp", "-g", "-r", "1k.bin", "-l", out, "127.0.0.1", port]),
                (
                    fiveMiB,
                    [
                        "atftp", "--option", "blksize 1468", "--option", "windowsize 16", "-g", "-r", "5m.bin", "-l",
                        out,
                        "127.0.0.1", port,
                    ]
                ),
                (
                    hundredMiB,
                    [
                        "atftp", "--option", "blksize 512", "--option", "windowsize 16", "-g", "-r", "100m.bin",
                        "-l", out, "127.0.0.1", port,
                    ]
                ),
                (oneKiB, ["curl", "-sS", "-o", out, "tftp://127.0.0.1:\(port)/1k.bin"]),
                (fiveMiB, ["curl", "-sS", "-o", out, "--tftp-blksize", "1468", "tftp://127.0.0.1:\(port)/5m.bin"]),
            ]
            for (source, argv) in runs {
                try? FileManager.default.removeItem(atPath: out)
                let (status, output) = try await runTool(argv)
                #expect(status.succeeded, "\(argv.joined(separator: " ")): \(output)")
                #expect(try await sha256(out) == (try await sha256(source)), "\(argv.joined(separator: " "))")
            }
            #expect(server.isRunning)
        }
    }

    @Test func netasciiTurnsLineEndsIntoCRLFOnTheWire() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/root", withIntermediateDirectories: true)
        let text = "default local\nlabel local\n  localboot 0\r\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder.path + "/root/menu.txt"))
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            // On the wire: LF -> CR LF, CR -> CR NUL; tftp-hpa's client turns that back into the local text.
            let client = try RawUDP()
            client.send(Wire.request(1, Array("menu.txt".utf8), mode: "netascii"), to: server.port)
            let reply = try #require(client.receive())
            #expect(
                Array(reply.bytes.dropFirst(4)) == Array("default local\r\nlabel local\r\n  localboot 0\r\0\r\n".utf8))
            let out = folder.path + "/menu.out"
            let (status, output) = try await runTool([
                "tftp", "-m", "netascii", "127.0.0.1", "\(server.port)", "-c", "get",
                "menu.txt", out,
            ])
            #expect(status.succeeded, "\(output)")
            #expect(try String(contentsOfFile: out, encoding: .utf8) == text)
        }
    }

    @Test func ipv6() async throws {
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/f.bin", size: 300 * Self.kib)
        try await withKilnServer(root: folder.path + "/root", host: "::1", logDir: folder.path) { server in
            let out = folder.path + "/out"
            let (status, output) = try await runTool([
                "curl", "-sS", "-g", "-o", out, "tftp://[::1]:\(server.port)/f.bin",
            ])
            #expect(status.succeeded, "\(output)")
            #expect(try await sha256(out) == (try await sha256(source)))
            let (hpa, hpaOutput) = try await runTool([
                "tftp", "-6", "-m", "binary", "::1", "\(server.port)", "-c", "get", "f.bin", out,
            ])
            #expect(hpa.succeeded, "\(hpaOutput)")
            #expect(try await sha256(out) == (try await sha256(source)))
        }
    }

    @Test func traversalAttemptsGetAnErrorAndNoData() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/root/sub", withIntermediateDirectories: true)
        try Data("SECRET".utf8).write(to: URL(fileURLWithPath: folder.path + "/secret"))
        try FileManager.default.createSymbolicLink(
            atPath: folder.path + "/root/escape", withDestinationPath: "../secret")
        try FileManager.default.createSymbolicLink(atPath: folder.path + "/root/sub/up", withDestinationPath: "../..")
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in

            let names: [[UInt8]] = [
                Array("../secret".utf8), Array("sub/../../secret".utf8), Array("..\\secret".utf8),
                Array("sub\\..\\..\\secret".utf8), Array("/etc/passwd".utf8), Array((folder.path + "/secret").utf8),
                Array("escape".utf8), Array("sub/up/secret".utf8), Array("/../secret".utf8),
                // A NUL inside the name ends it: the rest is read as the mode, which is then refused.
                Array("escape".utf8) + [0] + Array("../secret".utf8),
            ]
            for name in names {
                let client = try RawUDP()
                client.send(Wire.request(1, name), to: server.port)
                let reply = try #require(client.receive(timeout: .seconds(10)), "no answer for \(name)")
                #expect(
                    Wire.opcode(reply.bytes) == 5,
                    "\(String(decoding: name, as: UTF8.self)) got \(reply.bytes.prefix(4))")
                #expect(!String(decoding: reply.bytes, as: UTF8.self).contains("SECRET"))
            }
            // The same through a real client: an error, and no secret on disk.
            let out = folder.path + "/stolen"
            _ = try await runTool(["tftp", "127.0.0.1", "\(server.port)", "-c", "get", "../secret", out])
            let stolen = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(!stolen.contains("SECRET"))
            #expect(server.isRunning)
        }
    }

    @Test func malformedPacketsGetAnErrorOrNothingAndTheServerCarriesOn() async throws {
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/f.bin", size: 2 * Self.kib)
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let packets: [[UInt8]] = [
                [], [0], [0, 1], [0, 9, 0, 1], [0xFF, 0xFF], [0, 3, 0, 1, 1, 2], [0, 4, 0, 1], [0, 5, 0, 1],
                Array("\0\u{1}f.bin".utf8), Array("\0\u{1}f.bin\0octet".utf8),
                Array("\0\u{1}f.bin\0octet\0blksize\0".utf8), Array("\0\u{1}f.bin\0octet\0blksize".utf8),
                Array("\0\u{1}f.bin\0mail\0".utf8), Array("\0\u{1}f.bin\0bogus\0".utf8),
                Wire.rrq("f.bin", options: [("blksize", "0")]), Wire.rrq("f.bin", options: [("blksize", "7")]),
                Wire.rrq("f.bin", options: [("blksize", "65465")]), Wire.rrq("f.bin", options: [("blksize", "100000")]),
                Wire.rrq("f.bin", options: [("windowsize", "0")]), Wire.rrq("f.bin", options: [("blksize", "-1")]),
                Wire.request(1, Array(repeating: 0x61, count: 600)),
                [UInt8](repeating: 0xA5, count: 1400),
            ]
            for packet in packets {
                let client = try RawUDP()
                client.send(packet, to: server.port)
                if let reply = client.receive(timeout: .milliseconds(300)) {
                    #expect(Wire.opcode(reply.bytes) == 5, "\(packet.prefix(24)) got \(reply.bytes.prefix(8))")
                }
            }
            #expect(server.isRunning)
            let out = folder.path + "/out"
            let (status, _) = try await runTool(["curl", "-sS", "-o", out, "tftp://127.0.0.1:\(server.port)/f.bin"])
            #expect(status.succeeded)
            #expect(try await sha256(out) == (try await sha256(source)))
        }
    }

    /// GRUB acknowledges an OACK once and never repeats that ACK; atftp repeats it only after 5 s and
    /// aborts if the OACK comes again first. A client that stays silent gets the OACK again from the same
    /// transfer ID, after atftp's timer and well within GRUB's ~30 s of reading.
    @Test func anUnacknowledgedOptionAcknowledgementComesAgainAfterFiveSeconds() async throws {
        let folder = try TemporaryFolder()
        _ = try folder.randomFile("root/f.bin", size: 3000)
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let client = try RawUDP()
            client.send(Wire.rrq("f.bin", options: [("blksize", "1024"), ("timeout", "1")]), to: server.port)
            let first = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no OACK")
            #expect(Wire.opcode(first.bytes) == 6)
            let sent = ContinuousClock.now
            let again = try #require(await client.receiveOffPool(timeout: .seconds(10)), "the OACK never came again")
            let waited = ContinuousClock.now - sent
            #expect(again.bytes == first.bytes && again.port == first.port)
            #expect(waited > .seconds(5) && waited < .seconds(8), "came again after \(waited)")
            client.send(Wire.ack(0), to: first.port)
            let data = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no DATA after ACK 0")
            #expect(Wire.opcode(data.bytes) == 3 && Wire.number(data.bytes) == 1 && data.bytes.count == 4 + 1024)
        }
    }

    @Test func writeRequestsAreRefused() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/root", withIntermediateDirectories: true)
        try Data("upload".utf8).write(to: URL(fileURLWithPath: folder.path + "/upload.txt"))
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let client = try RawUDP()
            client.send(Wire.request(2, Array("new.txt".utf8)), to: server.port)
            let reply = try #require(client.receive(timeout: .seconds(10)))
            #expect(Wire.opcode(reply.bytes) == 5 && Wire.number(reply.bytes) == 2)
            _ = try await runTool(
                ["tftp", "127.0.0.1", "\(server.port)", "-c", "put", folder.path + "/upload.txt", "new.txt"],
                timeout: 20)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path + "/root").isEmpty)
        }
    }

    @Test func strangersGetError5AndDuplicateAcksAreIgnored() async throws {
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/f.bin", size: 5 * 512 + 100)
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let client = try RawUDP()
            let stranger = try RawUDP()
            client.send(Wire.rrq("f.bin"), to: server.port)
            var received: [UInt8] = []
            let first = try #require(client.receive(timeout: .seconds(10)))
            #expect(first.port != server.port, "a transfer has its own port")
            let transferPort = first.port
            #expect(Wire.opcode(first.bytes) == 3 && Wire.number(first.bytes) == 1)
            received += first.bytes.dropFirst(4)

            stranger.send(Wire.ack(1), to: transferPort)
            let refusal = try #require(stranger.receive(timeout: .seconds(10)))
            #expect(Wire.opcode(refusal.bytes) == 5 && Wire.number(refusal.bytes) == 5)

            // The same ACK twenty times: a server with the Sorcerer's Apprentice bug answers each with block 2;
            // kiln sends it once, plus at most its own timed retransmissions (25 ms, then 50, 100...).
            for _ in 0..<20 { client.send(Wire.ack(1), to: transferPort) }
            var copies: [[UInt8]] = []
            let until = ContinuousClock.now + .milliseconds(150)
            while ContinuousClock.now < until {
                if let next = client.receive(timeout: .milliseconds(20)) { copies.append(next.bytes) }
            }
            #expect(copies.allSatisfy { Wire.number($0) == 2 })
            #expect((1...4).contains(copies.count), "block 2 came \(copies.count) times")
            received += try #require(copies.first).dropFirst(4)
            var block: UInt16 = 2
            while true {
                client.send(Wire.ack(block), to: transferPort)
                guard let next = client.receive(timeout: .seconds(2)) else { break }
                guard Wire.number(next.bytes) == block + 1 else { continue }
                block += 1
                received += next.bytes.dropFirst(4)
                if next.bytes.count < 4 + 512 {
                    client.send(Wire.ack(block), to: transferPort)
                    break
                }
            }
            #expect(received == Array(try Data(contentsOf: URL(fileURLWithPath: source))))
        }
    }

    @Test func transfersBeyondTheCapsAreNotStarted() async throws {
        let folder = try TemporaryFolder()
        try folder.randomFile("root/f.bin", size: 4 * Self.kib)
        try await withKilnServer(
            root: folder.path + "/root", extra: ["--max-transfers-per-client", "2"], logDir: folder.path
        ) { server in
            let clients = try (0..<3).map { _ in try RawUDP() }
            for client in clients.prefix(2) {
                client.send(Wire.rrq("f.bin"), to: server.port)
                #expect(Wire.opcode(client.receive(timeout: .seconds(10))?.bytes ?? []) == 3)
            }
            clients[2].send(Wire.rrq("f.bin"), to: server.port)
            #expect(clients[2].receive(timeout: .milliseconds(500)) == nil)
            #expect(server.logText.contains("too many transfers"))
        }
    }

    @Test func twoHundredConcurrentTransfersAllComplete() async throws {
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/f.bin", size: 512 * Self.kib)
        try await withKilnServer(
            root: folder.path + "/root", extra: ["--max-transfers-per-client", "200"], logDir: folder.path
        ) { server in
            let count = 200
            try FileManager.default.createDirectory(atPath: folder.path + "/out", withIntermediateDirectories: true)
            // One curl process running 200 transfers at once, each on its own socket.
            var argv = [
                "curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "\(count)", "--tftp-blksize",
                "1468",
            ]
            for i in 0..<count { argv += ["-o", folder.path + "/out/\(i)", "tftp://127.0.0.1:\(server.port)/f.bin"] }
            let (status, output) = try await runTool(argv, timeout: 300)
            #expect(status.succeeded, "\(output.prefix(500))")
            let expected = try await sha256(source)
            var good = 0
            for i in 0..<count where (try? await sha256(folder.path + "/out/\(i)")) == expected { good += 1 }
            #expect(good == count)
            #expect(server.isRunning)
        }
    }
}
