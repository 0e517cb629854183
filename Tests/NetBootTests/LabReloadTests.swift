import Foundation
import KilnSupport
import Testing

/// `kiln serve --config` picks up a changed lab file while it serves, keeps the old one when the new one
/// is broken, and a transfer under way finishes with the bytes it started with.
@Suite("kiln serve --config: reloading the lab file", .enabled(if: Tools.has("curl"), "needs curl"))
struct LabReloadTests {
    static func lab(extraHost: Bool, broken: Bool = false) -> String {
        var text = """
            address: 192.0.2.1
            tftp: "127.0.0.1:0"
            http: "127.0.0.1:0"
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
}
