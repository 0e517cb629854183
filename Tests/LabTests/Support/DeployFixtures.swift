import Foundation
import KilnSupport
import KilnTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What the image-deploy tests share: the deploy agent prepared once by `kiln serve --prepare`, small
/// disk images made with sfdisk and mke2fs, and the agent booted straight from its kernel under QEMU
/// with user networking (the guest reaches the host's loopback at 10.0.2.2).
enum DeployFixtures {
    /// Where a QEMU guest with user networking reaches the host (slirp's fixed gateway address).
    static let userNetworkHost = "10.0.2.2"

    /// The agent's kernel and initramfs, prepared once for all the tests (a lab beside the kiln binary,
    /// so that its lockfile serves later runs). Awaited, not waited for: a thread of Swift's small pool
    /// blocked on it could be the one the preparation needs.
    static let agent = Task.detached { try await prepareAgent() }

    static func prepareAgent() async throws -> (kernel: String, initrd: String) {
        let folder = URL(fileURLWithPath: Tools.kiln).deletingLastPathComponent()
            .appendingPathComponent("kiln-deploy-test").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = try await makeImage(in: folder, name: "placeholder.raw", dataMiB: 0)
        let lab = "\(folder)/lab.yaml"
        try labFile(port: 1, hosts: [("52:54:00:00:00:01", "placeholder", "image: placeholder.raw")])
            .write(toFile: lab, atomically: true, encoding: .utf8)
        let (status, output) = try await runTool([Tools.kiln, "serve", "--config", lab, "--prepare"], timeout: 900)
        guard status.succeeded,
            let line = output.split(separator: "\n").first(where: { $0.hasPrefix("kiln: deploy agent ready: ") })
        else {
            throw SubprocessError(command: "kiln serve --prepare", reason: "\(status): \(output)")
        }
        let kernel = String(line.dropFirst("kiln: deploy agent ready: ".count))
        let folderOfAgent = (kernel as NSString).deletingLastPathComponent
        return (kernel, folderOfAgent + "/initrd.img")
    }

    /// A lab on loopback: HTTP on `port`, no DHCP, the hosts as (MAC, name, YAML lines of the host).
    static func labFile(port: Int, hosts: [(String, String, String)]) -> String {
        var text = """
            address: 192.0.2.1
            tftp: off
            http: "127.0.0.1:\(port)"
            dhcp: {mode: off}
            hosts:

            """
        for (mac, name, extra) in hosts {
            text += "  - mac: \"\(mac)\"\n    name: \(name)\n"
            for line in extra.split(separator: "\n") { text += "    \(line)\n" }
        }
        return text
    }

    /// A GPT disk image: a 16 MiB partition, then a root partition (the x86-64 root type) holding an
    /// ext4 file system with `/etc/hostname` ("old-name"), a machine id, an SSH host key and `dataMiB`
    /// MiB of pseudo-random data in `/data.bin`. Returns the SHA-256 of `/data.bin`.
    @discardableResult
    static func makeImage(in folder: String, name: String, dataMiB: Int, sizeMiB: Int = 64) async throws -> String {
        let image = "\(folder)/\(name)"
        let tree = "\(folder)/\(name).tree"
        try? FileManager.default.removeItem(atPath: image)
        try? FileManager.default.removeItem(atPath: tree)
        defer { try? FileManager.default.removeItem(atPath: tree) }
        try FileManager.default.createDirectory(atPath: "\(tree)/etc/ssh", withIntermediateDirectories: true)
        try "old-name\n".write(toFile: "\(tree)/etc/hostname", atomically: true, encoding: .utf8)
        try "127.0.0.1\tlocalhost\n127.0.1.1\told-name\n".write(
            toFile: "\(tree)/etc/hosts", atomically: true, encoding: .utf8)
        try "0123456789abcdef0123456789abcdef\n".write(
            toFile: "\(tree)/etc/machine-id", atomically: true, encoding: .utf8)
        try "not a key\n".write(toFile: "\(tree)/etc/ssh/ssh_host_ed25519_key", atomically: true, encoding: .utf8)
        var digest = ""
        if dataMiB > 0 {
            try await run(["dd", "if=/dev/urandom", "of=\(tree)/data.bin", "bs=1M", "count=\(dataMiB)", "status=none"])
            digest = try await sha256("\(tree)/data.bin")
        }
        try await run(["truncate", "-s", "\(sizeMiB)M", image])
        try await run([
            "sh", "-c", "printf 'label: gpt\\n,16M,L\\n,,4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\\n' | sfdisk -q \"$1\"",
            "sh",
            image,
        ])
        let (_, layout) = try await Subprocess.output(["partx", "-g", "-o", "START,SECTORS", "-n", "2", image])
        let fields = layout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard fields.count == 2 else { throw SubprocessError(command: "partx", reason: layout) }
        try await run([
            "mke2fs", "-q", "-t", "ext4", "-d", tree, "-E", "offset=\(fields[0] * 512)", image, "\(fields[1] / 2)k",
        ])
        return digest
    }

    /// Writes `manifest.json` beside an image, as `kiln build` does, with `sha256` for it.
    static func writeManifest(for image: String, sha256 digest: String) throws {
        let name = (image as NSString).lastPathComponent
        let json = """
            {"kiln": "test", "outputs": [{"file": "\(name)", "format": "raw", "sha256": "\(digest)", "size": 0}]}

            """
        try json.write(
            toFile: (image as NSString).deletingLastPathComponent + "/manifest.json", atomically: true,
            encoding: .utf8)
    }

    static func run(_ argv: [String]) async throws {
        let (status, output) = try await Subprocess.output(argv)
        guard status.succeeded else { throw SubprocessError(command: argv.joined(separator: " "), reason: output) }
    }

    /// The agent's kernel command line from the iPXE script kiln serves for `mac`, with kiln's lab
    /// address replaced by the one QEMU's user network gives the host.
    static func agentCommandLine(port: Int, mac: String) async throws -> String? {
        let (_, script) = try await Subprocess.output([
            "curl", "-fsS", "http://127.0.0.1:\(port)/ipxe/\(mac)",
        ])
        guard let line = script.split(separator: "\n").first(where: { $0.hasPrefix("kernel ") }) else { return nil }
        let words = line.split(separator: " ").dropFirst(2).map(String.init)
        return words.joined(separator: " ").replacingOccurrences(of: "192.0.2.1:", with: "\(userNetworkHost):")
    }

    /// QEMU booting the agent from its kernel, with a blank disk and user networking.
    static func agentMachine(
        agent: (kernel: String, initrd: String), commandLine: String, mac: String, disk: String, console: String
    ) -> Subprocess {
        Subprocess(
            [
                "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-display", "none", "-no-reboot", "-monitor",
                "none", "-serial", "file:\(console)", "-kernel", agent.kernel, "-initrd", agent.initrd, "-append",
                commandLine, "-netdev", "user,id=n", "-device", "virtio-net-pci,netdev=n,mac=\(mac)", "-drive",
                "file=\(disk),if=virtio,format=qcow2",
            ], output: .logFile(console + ".qemu"))
    }

    /// A free TCP port on loopback.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
