import Foundation
import KilnTestSupport
import Logging
import NIOCore
import NetBoot
import Testing

@testable import Lab

/// The package's root, from this file's place in it.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private enum Judges {
    static let debconf = ["/usr/bin/debconf-set-selections"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let ksvalidator: String? = ([packageRoot + "/.tools/venv/bin/ksvalidator", "/usr/bin/ksvalidator"])
        .first { FileManager.default.isExecutableFile(atPath: $0) }
}

@Suite("Generated boot files of a lab")
struct LabBootFilesTests {
    let folder: TemporaryFolder
    let files: LabBootFiles
    let http = BootClient(address: nil, transport: .http)
    /// lab-07, at its fixed address.
    let lab07 = Self.client("192.0.2.17")
    let tftp = BootClient(address: nil, transport: .tftp)

    init() throws {
        folder = try TemporaryFolder()
        let path = try LabFixtures.write(LabFixtures.serverLab(), into: folder.path)
        files = try LabBootFiles(config: try LabConfig.load(path), logger: Logger(label: "test"))
    }

    static func client(_ address: String) -> BootClient {
        BootClient(address: try? SocketAddress(ipAddress: address, port: 40_000), transport: .http)
    }

    func text(_ path: String, _ client: BootClient) async throws -> String? {
        try await files.file(at: path, for: client).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func knownHostBootsTheDebianInstallerWithItsPreseed() async throws {
        let menu = try #require(try await text("pxelinux.cfg/01-52-54-00-12-34-56", tftp))
        #expect(menu.contains("KERNEL debian-installer/12/amd64/linux"))
        #expect(menu.contains("INITRD debian-installer/12/amd64/initrd.gz"))
        #expect(menu.contains("url=http://192.0.2.1:8080/preseed/52-54-00-12-34-56"))
        #expect(menu.contains("auto=true priority=critical"))
        #expect(menu.contains("hostname=lab-07"))
        #expect(menu.contains("console=ttyS0,115200"))
        let grub = try #require(try await text("grub/grub.cfg-52:54:00:12:34:56", tftp))
        #expect(grub.contains("linux (tftp,192.0.2.1)/debian-installer/12/amd64/linux auto=true"))
        #expect(grub.contains("initrd (tftp,192.0.2.1)/debian-installer/12/amd64/initrd.gz"))
        let ipxe = try #require(try await text("ipxe/52:54:00:12:34:56", http))
        #expect(ipxe.hasPrefix("#!ipxe\n"))
        #expect(
            ipxe.contains("kernel http://192.0.2.1:8080/debian-installer/12/amd64/linux initrd=initrd.gz auto=true"))
    }

    @Test func unknownHostBootsItsDisk() async throws {
        let menu = try #require(try await text("pxelinux.cfg/01-52-54-00-99-99-99", tftp))
        #expect(menu.contains("LOCALBOOT 0"))
        #expect(!menu.contains("KERNEL"))
        let grub = try #require(try await text("grub.cfg-01-52-54-00-99-99-99", tftp))
        #expect(grub.contains("exit") && !grub.contains("linux "))
        #expect(try await text("pxelinux.cfg/default", tftp)?.contains("LOCALBOOT 0") == true)
        #expect(try await text("preseed/52-54-00-99-99-99", http) == nil)
    }

    @Test func rpmHostBootsItsOwnInstallerWithItsKickstart() async throws {
        let menu = try #require(try await text("pxelinux.cfg/01-52-54-00-ab-cd-ef", tftp))
        #expect(menu.contains("KERNEL hosts/lab-08/linux"))
        #expect(menu.contains("inst.ks=http://192.0.2.1:8080/kickstart/52-54-00-ab-cd-ef"))
        #expect(try await files.diskFile(at: "hosts/lab-08/linux", for: tftp) == folder.path + "/vmlinuz")
        #expect(try await files.diskFile(at: "hosts/lab-08/initrd", for: http) == folder.path + "/initrd.img")
        #expect(try await files.diskFile(at: "hosts/lab-07/linux", for: http) == nil)
    }

    /// The preseed a host fetches is the description's, with the call that ends the reinstall loop, and
    /// debconf accepts it.
    @Test(.requires(Judges.debconf != nil, "debconf-set-selections"))
    func preseedTellsKilnWhenDoneAndDebconfAcceptsIt() async throws {
        let preseed = try #require(try await text("preseed/52-54-00-12-34-56", lab07))
        #expect(preseed.contains("d-i netcfg/get_hostname string lab-07"))
        #expect(preseed.contains("wget -q -O /dev/null http://192.0.2.1:8080/installed/52-54-00-12-34-56"))
        #expect(try await text("preseed/52-54-00-12-34-56", tftp) == nil, "answers are served over HTTP only")
        let path = folder.path + "/host.preseed"
        try preseed.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await runTool(["debconf-set-selections", "--checkonly", path])
        #expect(status.succeeded && output.isEmpty, "\(output)")
    }

    @Test(.requires(Judges.ksvalidator != nil, "ksvalidator (scripts/install-deps.sh)"))
    func kickstartTellsKilnWhenDoneAndKsvalidatorAcceptsIt() async throws {
        let kickstart = try #require(try await text("kickstart/52-54-00-ab-cd-ef", Self.client("192.0.2.50")))
        #expect(kickstart.contains("curl -fsS -o /dev/null http://192.0.2.1:8080/installed/52-54-00-ab-cd-ef"))
        let path = folder.path + "/host.ks"
        try kickstart.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await runTool([Judges.ksvalidator ?? "", "-v", "RHEL9", path])
        #expect(status.succeeded, "\(output)")
    }

    /// A host's answers (password hashes, files) and its `installed/` call go to its own address only:
    /// its lease, else its fixed address, else the first address that asked since its last install.
    @Test func answersGoOnlyToTheirHost() async throws {
        func refused(_ path: String, _ client: BootClient) async -> Bool {
            do {
                _ = try await files.file(at: path, for: client)
                return false
            } catch let error as NetBootError {
                return error.code == .refused
            } catch {
                return false
            }
        }
        // lab-07 has a fixed address.
        #expect(await refused("preseed/52-54-00-12-34-56", Self.client("192.0.2.99")))
        #expect(await refused("preseed/52-54-00-12-34-56", http), "a client whose address is unknown")
        #expect(await refused("installed/52-54-00-12-34-56", Self.client("192.0.2.99")))
        #expect(!files.state.isInstalled(MACAddress("52:54:00:12:34:56")!))
        #expect(try await text("preseed/52-54-00-12-34-56", lab07)?.contains("lab-07") == true)
        // lab-08 has none: the first asker holds its answers until its install is reported.
        let first = Self.client("192.0.2.50")
        let other = Self.client("192.0.2.51")
        #expect(try await text("kickstart/52-54-00-ab-cd-ef", first) != nil)
        #expect(await refused("kickstart/52-54-00-ab-cd-ef", other))
        #expect(await refused("installed/52-54-00-ab-cd-ef", other))
        #expect(try await text("kickstart/52-54-00-ab-cd-ef", first) != nil, "the same host asks again")
        #expect(try await text("installed/52-54-00-ab-cd-ef", first)?.contains("lab-08") == true)
        #expect(try await text("kickstart/52-54-00-ab-cd-ef", other) != nil, "a reinstall may come from elsewhere")
        // With kiln as the DHCP server, the lease decides, over the fixed address too.
        files.setLeaseTable {
            [
                MACAddress("52:54:00:12:34:56")!: IPv4Address("192.0.2.70")!,
                MACAddress("52:54:00:ab:cd:ef")!: IPv4Address("192.0.2.71")!,
            ]
        }
        #expect(await refused("preseed/52-54-00-12-34-56", lab07))
        #expect(try await text("preseed/52-54-00-12-34-56", Self.client("192.0.2.70")) != nil)
        #expect(await refused("kickstart/52-54-00-ab-cd-ef", other))
        #expect(try await text("kickstart/52-54-00-ab-cd-ef", Self.client("192.0.2.71")) != nil)
        // An IPv4-mapped IPv6 peer (a [::] socket) is the same address.
        #expect(try await text("kickstart/52-54-00-ab-cd-ef", Self.client("::ffff:192.0.2.71")) != nil)
    }

    /// After the installer reports in, the host boots its disk, and that survives a restart.
    @Test func installedHostBootsLocallyFromThenOn() async throws {
        #expect(try await text("installed/52-54-00-12-34-56", tftp) == nil, "only HTTP marks a host installed")
        #expect(try await text("pxelinux.cfg/01-52-54-00-12-34-56", tftp)?.contains("KERNEL") == true)
        let answer = try #require(try await text("installed/52-54-00-12-34-56", lab07))
        #expect(answer.contains("lab-07"))
        #expect(try await text("pxelinux.cfg/01-52-54-00-12-34-56", tftp)?.contains("LOCALBOOT 0") == true)
        #expect(try await text("ipxe/52:54:00:12:34:56", http)?.contains("exit") == true)
        // Another process reading the same state folder (kiln restarted) agrees.
        let restarted = try LabState(directory: files.config.stateDirectory)
        #expect(restarted.isInstalled(MACAddress("52:54:00:12:34:56")!))
        #expect(!restarted.isInstalled(MACAddress("52:54:00:ab:cd:ef")!))
        // Deleting the line makes it install again.
        try "".write(toFile: restarted.file, atomically: true, encoding: .utf8)
        #expect(try await text("pxelinux.cfg/01-52-54-00-12-34-56", tftp)?.contains("KERNEL") == true)
    }

    /// An arm64 host (`arch: aarch64`): arm64 GRUB, which asks in its platform folder, gets the arm64
    /// installer with no console of the description's (the firmware names the serial port); x86-64 GRUB
    /// or pxelinux asking for it are refused, and an x86-64 host asked for by arm64 GRUB too.
    @Test func arm64HostBootsTheArm64InstallerFromArm64GRUB() async throws {
        let lab = LabFixtures.serverLab().replacingOccurrences(
            of: "    address: 192.0.2.17\n", with: "    address: 192.0.2.17\n    arch: aarch64\n")
        let arm = try LabBootFiles(
            config: try LabConfig.load(try LabFixtures.write(lab, into: folder.path)), logger: Logger(label: "test"))
        func text(_ path: String) async throws -> String? {
            try await arm.file(at: path, for: tftp).map { String(decoding: $0, as: UTF8.self) }
        }
        let entry = try #require(try await text("grub/arm64-efi/grub.cfg"))
        #expect(entry.contains(#"configfile "${prefix}/${grub_cpu}-${grub_platform}/grub.cfg-${net_default_mac}""#))
        let grub = try #require(try await text("grub/arm64-efi/grub.cfg-52:54:00:12:34:56"))
        #expect(grub.contains("linux (tftp,192.0.2.1)/debian-installer/12/arm64/linux auto=true"), "\(grub)")
        #expect(grub.contains("initrd (tftp,192.0.2.1)/debian-installer/12/arm64/initrd.gz"))
        #expect(grub.contains("url=http://192.0.2.1:8080/preseed/52-54-00-12-34-56"))
        #expect(!grub.contains("console="), "\(grub)")
        // The same host asked for by x86-64 firmware: its disk, not an installer it cannot run.
        let x86 = try #require(try await text("grub/grub.cfg-52:54:00:12:34:56"))
        #expect(!x86.contains("linux ") && x86.contains("BOOTX64.EFI"), "\(x86)")
        let pxelinux = try #require(try await text("pxelinux.cfg/01-52-54-00-12-34-56"))
        #expect(pxelinux.contains("LOCALBOOT 0") && !pxelinux.contains("KERNEL"))
        // An x86-64 host (the Rocky one) asked for by arm64 GRUB, and an unknown arm64 machine: the
        // disk's arm64 removable loader.
        let rocky = try #require(try await text("grub/arm64-efi/grub.cfg-52:54:00:ab:cd:ef"))
        #expect(!rocky.contains("linux ") && rocky.contains("chainloader /EFI/BOOT/BOOTAA64.EFI"), "\(rocky)")
        let unknown = try #require(try await text("grub/arm64-efi/grub.cfg-52:54:00:99:99:99"))
        #expect(unknown.contains("chainloader /EFI/BOOT/BOOTAA64.EFI"))
    }

    @Test func lateCommandIsAppendedToTheRenderedOne() {
        let preseed = "a\nd-i preseed/late_command string \\\n    one; \\\n    two\n# End\n"
        let result = LabBootFiles.addingLateCommand("three", to: preseed)
        #expect(result == "a\nd-i preseed/late_command string \\\n    one; \\\n    two; \\\n    three\n# End\n")
        let fresh = LabBootFiles.addingLateCommand("three", to: "a\n# End\nb\n")
        #expect(fresh.contains("d-i preseed/late_command string three\n\n# End"))
    }
}
