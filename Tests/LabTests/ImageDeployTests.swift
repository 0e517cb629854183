import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Image deploys with kiln's real deploy agent: the agent (kernel and initramfs from Debian packages)
/// booted under QEMU straight from its kernel, its kernel command line taken from the iPXE script kiln
/// serves, talking to `kiln serve` on loopback through QEMU's user network. The disk it wrote is then
/// judged by sfdisk, e2fsck and debugfs. (The firmware boot chain is `ImageDeployBootTests`.)
@Suite(
    "kiln serve deploys images with its agent", .serialized,
    .requires(
        Tools.has("qemu-system-x86_64") && Tools.has("qemu-img") && Tools.has("sfdisk") && Tools.has("mke2fs")
            && Tools.has("debugfs") && Tools.has("curl"), "qemu-system-x86, qemu-utils, fdisk, e2fsprogs and curl")
)
struct ImageDeployTests {
    let mac = "52:54:00:00:20:10"

    /// kiln serving a lab of one host that deploys `image`, on a free loopback port.
    func startKiln(folder: TemporaryFolder, image: String, extraHostLines: String = "") async throws -> (LabKiln, Int) {
        let port = DeployFixtures.freePort()
        let lab = DeployFixtures.labFile(port: port, hosts: [(mac, "lab-10", "image: \(image)\n\(extraHostLines)")])
        try lab.write(toFile: folder.file("lab.yaml"), atomically: true, encoding: .utf8)
        return (try await LabKiln(config: folder.file("lab.yaml"), namespace: nil, logDir: folder.path), port)
    }

    func statusJSON(port: Int) async throws -> [[String: Any]] {
        let (_, body) = try await Subprocess.output(["curl", "-fsS", "http://127.0.0.1:\(port)/status.json"])
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return object?["hosts"] as? [[String: Any]] ?? []
    }

    /// Runs the agent until it reboots or powers off (QEMU exits with `-no-reboot`).
    func runAgent(
        port: Int, folder: TemporaryFolder, diskMiB: Int,
        whileRunning: (Subprocess) async throws -> Void = {
            _ in
        }
    ) async throws -> String {
        let agent = try await DeployFixtures.agent.value
        let commandLine = try #require(try await DeployFixtures.agentCommandLine(port: port, mac: mac))
        #expect(commandLine.contains("kiln.url=http://\(DeployFixtures.userNetworkHost):\(port)/deploy/"))
        try await DeployFixtures.run([
            "qemu-img", "create", "-q", "-f", "qcow2", folder.file("disk.qcow2"), "\(diskMiB)M",
        ])
        let console = folder.file("console.log")
        let machine = DeployFixtures.agentMachine(
            agent: agent, commandLine: commandLine, mac: mac, disk: folder.file("disk.qcow2"), console: console)
        try machine.start()
        do {
            try await whileRunning(machine)
        } catch {
            await machine.stop()
            throw error
        }
        let deadline = ContinuousClock.now + .seconds(420)
        while machine.poll() == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(500)) }
        await machine.stop()
        return (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
    }

    /// Reads a file from the root file system (partition 2) of a qcow2 disk.
    func readFromRoot(_ disk: String, _ path: String, folder: TemporaryFolder) async throws -> String {
        let raw = folder.file("disk.raw")
        if !FileManager.default.fileExists(atPath: raw) {
            try await DeployFixtures.run(["qemu-img", "convert", "-O", "raw", disk, raw])
        }
        let start = try await rootStart(raw)
        let (_, text) = try await Subprocess.output(["debugfs", "-R", "cat \(path)", "\(raw)?offset=\(start * 512)"])
        // debugfs names itself on stderr, which comes first.
        return text.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("debugfs ") }
            .joined(separator: "\n")
    }

    func rootStart(_ raw: String) async throws -> Int {
        let (_, start) = try await Subprocess.output(["partx", "-g", "-o", "START", "-n", "2", raw])
        return try #require(Int(start.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    @Test func agentWritesTheImageGrowsItsRootAndNamesTheHost() async throws {
        let folder = try TemporaryFolder()
        let dataDigest = try await DeployFixtures.makeImage(in: folder.path, name: "golden.raw", dataMiB: 8)
        try DeployFixtures.writeManifest(
            for: folder.file("golden.raw"), sha256: try await sha256(folder.file("golden.raw")))
        let (kiln, port) = try await startKiln(folder: folder, image: "golden.raw")
        defer { Task { await kiln.stop() } }
        #expect(try await statusJSON(port: port).first?["state"] as? String == "waiting")

        let console = try await runAgent(port: port, folder: folder, diskMiB: 512)
        await kiln.stop()
        let log = kiln.logText
        #expect(console.contains("kiln-agent: done; reboot"), "\(console.suffix(3000))")
        #expect(log.contains("lab: lab-10 deploy booting"), "\(log.suffix(3000))")
        #expect(log.contains("lab: lab-10 deploy installing"), "\(log.suffix(3000))")
        #expect(log.contains("lab: lab-10 deploy installed in "), "\(log.suffix(3000))")

        // The disk: a valid GPT whose backup header is at the disk's end, the root partition and its
        // file system grown to the end, clean, holding the image's files, named by the lab.
        let raw = folder.file("disk.raw")
        try await DeployFixtures.run(["qemu-img", "convert", "-O", "raw", folder.file("disk.qcow2"), raw])
        let (verified, verification) = try await Subprocess.output(["sfdisk", "--verify", raw])
        #expect(verified.succeeded && verification.contains("No errors detected"), "\(verification)")
        let (_, ends) = try await Subprocess.output(["partx", "-g", "-o", "END", "-n", "2", raw])
        // 512 MiB disk: the last usable sector is 1048542 (33 sectors of backup GPT after it).
        #expect(Int(ends.trimmingCharacters(in: .whitespacesAndNewlines)) == 1_048_542, "\(ends)")
        let start = try await rootStart(raw)
        let (fsck, report) = try await Subprocess.output(["e2fsck", "-f", "-n", "\(raw)?offset=\(start * 512)"])
        #expect(fsck.succeeded, "\(report)")
        let (_, superblock) = try await Subprocess.output(["dumpe2fs", "-h", "\(raw)?offset=\(start * 512)"])
        let blocks = superblock.split(separator: "\n").first { $0.hasPrefix("Block count:") }
            .flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect((blocks ?? 0) * 4096 > 480 << 20, "the root file system was not grown: \(blocks ?? 0) blocks")
        #expect(try await readFromRoot(folder.file("disk.qcow2"), "/etc/hostname", folder: folder) == "lab-10\n")
        #expect(try await readFromRoot(folder.file("disk.qcow2"), "/etc/machine-id", folder: folder).isEmpty)
        let hosts = try await readFromRoot(folder.file("disk.qcow2"), "/etc/hosts", folder: folder)
        #expect(hosts.contains("127.0.1.1\tlab-10"), "\(hosts)")
        let (_, keys) = try await Subprocess.output(["debugfs", "-R", "ls /etc/ssh", "\(raw)?offset=\(start * 512)"])
        #expect(!keys.contains("ssh_host_ed25519_key"), "\(keys)")
        let (_, _) = try await Subprocess.output([
            "debugfs", "-R", "dump /data.bin \(folder.file("data.bin"))", "\(raw)?offset=\(start * 512)",
        ])
        #expect(try await sha256(folder.file("data.bin")) == dataDigest)
    }

    @Test func afterItsDeployAHostBootsItsDiskUntilAskedToReinstall() async throws {
        let folder = try TemporaryFolder()
        try await DeployFixtures.makeImage(in: folder.path, name: "golden.raw", dataMiB: 1)
        let (kiln, port) = try await startKiln(folder: folder, image: "golden.raw", extraHostLines: "after: poweroff")
        defer { Task { await kiln.stop() } }
        let console = try await runAgent(port: port, folder: folder, diskMiB: 256)
        #expect(console.contains("kiln-agent: done; poweroff"), "\(console.suffix(3000))")

        let status = try await statusJSON(port: port)
        #expect(status.first?["state"] as? String == "installed")
        #expect((status.first?["bytes"] as? Int ?? 0) > 0)
        #expect((status.first?["ended"] as? String) != nil)
        let (_, metrics) = try await Subprocess.output(["curl", "-fsS", "-D", "-", "http://127.0.0.1:\(port)/metrics"])
        #expect(metrics.contains("Content-Type: text/plain; version=0.0.4"), "\(metrics.prefix(400))")
        #expect(metrics.contains("kiln_deploys_finished_total 1"), "\(metrics)")
        #expect(metrics.contains("kiln_hosts{state=\"installed\"} 1"), "\(metrics)")
        let (_, page) = try await Subprocess.output(["curl", "-fsS", "-D", "-", "http://127.0.0.1:\(port)/status"])
        #expect(page.contains("Content-Type: text/html"), "\(page.prefix(400))")
        #expect(page.contains("data-host=\"lab-10\""), "\(page)")

        // The next network boot goes to the disk.
        let (_, script) = try await Subprocess.output(["curl", "-fsS", "http://127.0.0.1:\(port)/ipxe/\(mac)"])
        #expect(script.contains("booting the local disk"), "\(script)")

        // Until the lab admin asks for a reinstall: then the agent, with a new token.
        let records = try String(contentsOfFile: folder.file("lab.yaml.state/deploys.json"), encoding: .utf8)
        let oldToken = try #require(
            records.split(separator: "\n").first { $0.contains("\"token\"") }?.split(separator: "\"").dropLast().last)
        let (code, _, err) = try runKiln(["serve", "--config", folder.file("lab.yaml"), "--reinstall", "lab-10"])
        #expect(code == 0, "\(err)")
        #expect(err.contains("lab-10 installs again"), "\(err)")
        let (_, again) = try await Subprocess.output(["curl", "-fsS", "http://127.0.0.1:\(port)/ipxe/\(mac)"])
        #expect(again.contains("agent/vmlinuz"), "\(again)")
        #expect(oldToken.count == 32 && !again.contains(oldToken), "\(oldToken): \(again)")
    }

    @Test func requestsWithoutTheTokenOrFromAnotherAddressAreRefused() async throws {
        let folder = try TemporaryFolder()
        try await DeployFixtures.makeImage(in: folder.path, name: "golden.raw", dataMiB: 1)
        let (kiln, port) = try await startKiln(folder: folder, image: "golden.raw")
        defer { Task { await kiln.stop() } }
        func status(_ path: String, from source: String = "127.0.0.1") async throws -> String {
            let (_, code) = try await Subprocess.output([
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source,
                "http://127.0.0.1:\(port)\(path)",
            ])
            return code
        }
        #expect(try await status("/deploy/00000000000000000000000000000000/plan") == "403")
        #expect(try await status("/deploy/00000000000000000000000000000000/chunk/0") == "403")
        let commandLine = try #require(try await DeployFixtures.agentCommandLine(port: port, mac: mac))
        let url = try #require(commandLine.split(separator: " ").first { $0.hasPrefix("kiln.url=") })
        let token = String(url.split(separator: "/").last ?? "")
        #expect(token.count == 32)
        // The first address that uses the token owns it.
        #expect(try await status("/deploy/\(token)/plan") == "200")
        #expect(try await status("/deploy/\(token)/chunk/0") == "200")
        #expect(try await status("/deploy/\(token)/chunk/0", from: "127.0.0.2") == "403")
        #expect(try await status("/deploy/\(token)/plan", from: "127.0.0.2") == "403")
        // Not over TFTP either: the image and reports are HTTP only (nothing is generated there).
        let log = kiln.logText
        #expect(log.contains("http: refused"), "\(log.suffix(2000))")
        #expect(log.contains("not from 127.0.0.1"), "\(log.suffix(2000))")
    }

    @Test func anImageThatDoesNotMatchItsManifestFailsAndIsNotWritten() async throws {
        let folder = try TemporaryFolder()
        try await DeployFixtures.makeImage(in: folder.path, name: "golden.raw", dataMiB: 1)
        try DeployFixtures.writeManifest(for: folder.file("golden.raw"), sha256: String(repeating: "0", count: 64))
        let (kiln, port) = try await startKiln(folder: folder, image: "golden.raw")
        defer { Task { await kiln.stop() } }
        let console = try await runAgent(port: port, folder: folder, diskMiB: 256)
        #expect(console.contains("kiln-agent: kiln refused:"), "\(console.suffix(3000))")
        #expect(console.contains("does not match manifest.json"), "\(console.suffix(3000))")
        let status = try await statusJSON(port: port)
        #expect(status.first?["state"] as? String == "failed")
        let error = status.first?["error"] as? String ?? ""
        #expect(error.contains("does not match manifest.json's 0000"), "\(error)")
        #expect(kiln.logText.contains("lab: lab-10 deploy failed"))
        // Nothing was written: the disk is still blank.
        let (_, map) = try await Subprocess.output(["qemu-img", "map", "--output=json", folder.file("disk.qcow2")])
        #expect(!map.contains("\"data\": true"), "\(map)")
        // The host is not offered the agent again until it is reinstalled.
        let (_, script) = try await Subprocess.output(["curl", "-fsS", "http://127.0.0.1:\(port)/ipxe/\(mac)"])
        #expect(script.contains("booting the local disk"), "\(script)")
    }

    @Test func aTransferSurvivesARestartOfKiln() async throws {
        let folder = try TemporaryFolder()
        let dataDigest = try await DeployFixtures.makeImage(
            in: folder.path, name: "golden.raw", dataMiB: 96, sizeMiB: 160)
        var (kiln, port) = try await startKiln(folder: folder, image: "golden.raw")
        let lab = folder.file("lab.yaml")
        let console = try await runAgent(port: port, folder: folder, diskMiB: 256) { _ in
            // Killed once the agent has fetched a few chunks, started again 3 s later on the same port.
            let deadline = ContinuousClock.now + .seconds(300)
            while !kiln.logText.contains("/chunk/2 "), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(kiln.process.processID, SIGKILL)
            _ = await kiln.process.wait()
            try await Task.sleep(for: .seconds(3))
            kiln = try await LabKiln(config: lab, namespace: nil, logDir: folder.path)
        }
        await kiln.stop()
        #expect(console.contains("trying again") || console.contains("fetching it again"), "\(console.suffix(3000))")
        #expect(console.contains("kiln-agent: done"), "\(console.suffix(3000))")
        #expect(kiln.logText.contains("lab: lab-10 deploy installed"), "\(kiln.logText.suffix(2000))")
        let raw = folder.file("disk.raw")
        try await DeployFixtures.run(["qemu-img", "convert", "-O", "raw", folder.file("disk.qcow2"), raw])
        let start = try await rootStart(raw)
        _ = try await Subprocess.output([
            "debugfs", "-R", "dump /data.bin \(folder.file("data.bin"))", "\(raw)?offset=\(start * 512)",
        ])
        #expect(try await sha256(folder.file("data.bin")) == dataDigest)
        _ = port
    }

    func runKiln(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tools.kiln)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus,
            String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }
}
