import Foundation
import KilnSupport
import KilnTestSupport
import Testing

/// `kiln serve --config` picks up a changed lab file while it serves, keeps the old one when the new one
/// is broken, and a transfer under way finishes with the bytes it started with.
@Suite("kiln serve --config: reloading the lab file", .requires(.program("curl")))
struct LabReloadTests {
    static func lab(extraHost: Bool, broken: Bool = false, listen: String = "127.0.0.1") -> String {
        var text = """
            address: 192.0.2.1
            tftp: "\(listen):0"
            http: "\(listen):0"
            dhcp:
              mode: off
            hosts:
              - mac: "52:54:00:12:34:56"
                name: lab-07
                description: debian.yaml

            """
        if extraHost {
            text += """
                  - mac: "52:54:00:00:00:09"
                    name: lab-09
                    description: debian.yaml

                """
        }
        if broken { text += "colour: blue\n" }
        return text
    }

    @Test func aChangedFileIsTakenABrokenOneIsNotAndTransfersGoOn() async throws {
        let folder = try TemporaryFolder()
        let big = try folder.randomFile("root/big.bin", size: 4 << 20)
        let config = try LabFixtures.write(Self.lab(extraHost: false), into: folder.path)
        let kiln = try await LabKiln(
            config: config, extra: ["--tftp-root", folder.path + "/root"], namespace: nil, logDir: folder.path)
        do {
            let tftp = try #require(kiln.port("TFTP"))
            let http = try #require(kiln.port("HTTP"))
            let menu = "http://127.0.0.1:\(http)/pxelinux.cfg/01-52-54-00-00-00-09"
            func fetchMenu() async throws -> String { try await runTool(["curl", "-sS", menu], timeout: 20).output }
            #expect(try await fetchMenu().contains("LOCALBOOT 0"), "an unknown host boots its disk")

            // A slow transfer (1 MiB/s for 4 MiB) runs across both changes.
            let out = folder.path + "/big.out"
            let slow = Subprocess(
                ["curl", "-sS", "--limit-rate", "1M", "-o", out, "tftp://127.0.0.1:\(tftp)/big.bin"],
                output: .logFile(folder.path + "/curl.log"))
            try slow.start()

            try Self.lab(extraHost: true).write(toFile: config, atomically: true, encoding: .utf8)
            var reloaded = false
            for _ in 0..<40 where !reloaded {
                try await Task.sleep(for: .milliseconds(250))
                reloaded = try await fetchMenu().contains("KERNEL debian-installer/12/amd64/linux")
            }
            #expect(reloaded, "the new host is served without a restart: \(kiln.logText.suffix(1000))")
            #expect(kiln.logText.contains("lab: reloaded \(config): 2 hosts"))

            try Self.lab(extraHost: false, broken: true).write(toFile: config, atomically: true, encoding: .utf8)
            var refused = false
            for _ in 0..<40 where !refused {
                try await Task.sleep(for: .milliseconds(250))
                refused = kiln.logText.contains("keeping the previous configuration")
            }
            #expect(refused, "\(kiln.logText.suffix(1000))")
            #expect(kiln.logText.contains("\(config):10:1: error: unknown key 'colour' in the lab file"))
            #expect(try await fetchMenu().contains("KERNEL"), "the previous lab file stays in use")

            let ended = await slow.wait()
            #expect(
                ended.succeeded, "\((try? String(contentsOfFile: folder.path + "/curl.log", encoding: .utf8)) ?? "")")
            #expect(try await sha256(out) == (try await sha256(big)))
        } catch {
            await kiln.stop()
            throw error
        }
        await kiln.stop()
    }

    /// New addresses in the lab file move TFTP and HTTP without a restart: the new sockets answer, the old
    /// HTTP one is closed, and a transfer started on the old TFTP socket (held at its first block until the
    /// move is done) finishes with the right bytes.
    @Test func changedAddressesAreBoundAgainAndTransfersGoOn() async throws {
        let folder = try TemporaryFolder()
        let big = try folder.randomFile("root/big.bin", size: 64 << 10)
        let config = try LabFixtures.write(Self.lab(extraHost: false), into: folder.path)
        let kiln = try await LabKiln(
            config: config, extra: ["--tftp-root", folder.path + "/root"], namespace: nil, logDir: folder.path)
        do {
            let oldTFTP = try #require(kiln.port("TFTP"))
            let oldHTTP = try #require(kiln.port("HTTP"))
            // A transfer under way: its first block is in, and no ACK goes back until the move is done.
            let client = try RawUDP()
            client.send(Wire.rrq("big.bin"), to: oldTFTP)
            let first = try #require(await client.receiveOffPool(timeout: .seconds(5)))
            #expect(Wire.opcode(first.bytes) == 3 && Wire.number(first.bytes) == 1)

            try Self.lab(extraHost: false, listen: "127.0.0.2").write(toFile: config, atomically: true, encoding: .utf8)
            func moved(_ server: String) -> Int? {
                let prefix = "lab: \(server) now on 127.0.0.2:"
                guard let line = kiln.logText.split(separator: "\n").last(where: { $0.contains(prefix) }),
                    let start = line.range(of: prefix)
                else { return nil }
                return Int(line[start.upperBound...].prefix { $0.isNumber })
            }
            for _ in 0..<40 where moved("TFTP") == nil || moved("HTTP") == nil {
                try await Task.sleep(for: .milliseconds(250))
            }
            let newTFTP = try #require(moved("TFTP"), "\(kiln.logText.suffix(1000))")
            let newHTTP = try #require(moved("HTTP"), "\(kiln.logText.suffix(1000))")

            let small = folder.path + "/small.out"
            let viaTFTP = try await runTool(
                ["curl", "-sS", "-o", small, "tftp://127.0.0.2:\(newTFTP)/pxelinux.cfg/default"], timeout: 20)
            #expect(viaTFTP.status.succeeded, "\(viaTFTP.output)")
            #expect((try? String(contentsOfFile: small, encoding: .utf8))?.contains("LOCALBOOT 0") == true)
            let viaHTTP = try await runTool(
                ["curl", "-sS", "http://127.0.0.2:\(newHTTP)/pxelinux.cfg/default"], timeout: 20)
            #expect(viaHTTP.output.contains("LOCALBOOT 0"), "\(viaHTTP.output)")
            let oldGone = try await runTool(
                ["curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(oldHTTP)/pxelinux.cfg/default"], timeout: 20)
            #expect(!oldGone.status.succeeded, "the old HTTP socket is closed: \(oldGone.output)")

            // The held transfer goes on to its end (repeats of a block already taken are skipped).
            var received = Array(first.bytes.dropFirst(4))
            var block: UInt16 = 1
            client.send(Wire.ack(block), to: first.port)
            while let packet = await client.receiveOffPool(timeout: .seconds(5)) {
                guard Wire.opcode(packet.bytes) == 3, Wire.number(packet.bytes) == block &+ 1 else { continue }
                block &+= 1
                received += packet.bytes.dropFirst(4)
                client.send(Wire.ack(block), to: first.port)
                if packet.bytes.count < 4 + 512 { break }
            }
            let expected = try #require(FileManager.default.contents(atPath: big))
            #expect(received == Array(expected), "\(received.count) of \(expected.count) bytes")
        } catch {
            await kiln.stop()
            throw error
        }
        await kiln.stop()
    }
}
