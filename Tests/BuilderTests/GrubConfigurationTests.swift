import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// The `grub.cfg` kiln writes instead of running `update-grub` in the guest, judged by GRUB's own
/// parser (`grub-script-check`); the images that boot from it are BuildCommandTests' and
/// RunLoginTests' (SeaBIOS and OVMF) and PlatformBuildTests'.
@Suite(.requires(.program("grub-script-check")))
struct GrubConfigurationTests {
    static func job(
        _ partitions: [Partition], arch: Architecture = .x86_64, packages: [String], versions: [String: String] = [:]
    ) throws -> InstallJob {
        var appliance = Appliance(name: "grub", os: OperatingSystem(name: .debian, version: "12"))
        appliance.hardware = Hardware(partitions: partitions, firmware: arch == .aarch64 ? .uefi : .hybrid)
        appliance.hardware.arch = arch
        if arch == .aarch64 { appliance.console = SerialConsole(device: "ttyAMA0", speed: 115200) }
        let root = TargetRoot(
            packages: packages.map {
                TargetRoot.Package(
                    name: $0, version: versions[$0] ?? "1", architecture: arch.debianName, databaseKey: $0,
                    hasPreinst: false,
                    preDepends: nil)
            })
        return InstallJob(
            appliance: appliance, layout: try DiskLayout(hardware: appliance.hardware, seed: "grub"), root: root,
            rootTar: "/nonexistent", aptSources: nil, sourceDateEpoch: 0)
    }

    /// The paths of the files the guest gets for `job`.
    static func guestFiles(_ job: InstallJob) throws -> [String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-grub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try job.guestJob(workDirectory: dir).files.map(\.path)
    }

    static func checked(_ text: String) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-grub-\(UUID().uuidString).cfg")
            .path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (ended, said) = try await Subprocess.output(["grub-script-check", file])
        #expect(ended == .exited(0), "grub-script-check: \(said)\n\(text)")
    }

    @Test func kernelsAreThePackagesThatInstallOneNewestFirst() {
        #expect(
            GrubConfiguration.kernelReleases([
                "linux-image-cloud-amd64", "linux-image-6.1.0-28-cloud-amd64", "linux-base",
                "linux-image-6.1.0-30-amd64-unsigned", "linux-image-6.1.0-28-amd64-dbg", "linux-image-amd64",
            ]) == ["6.1.0-30-amd64", "6.1.0-28-cloud-amd64"])
        #expect(GrubConfiguration.kernelReleases(["linux-image-amd64", "grub-pc"]).isEmpty)
    }

    /// GRUB 2.06 (Debian 12) has no `fwsetup --is-supported`: there that line restarts the machine
    /// into the firmware's setup, which is how a Debian 12 UEFI image reset right after "Welcome to
    /// GRUB!". Its menu entry is written as 2.06's update-grub writes it; 2.12 (Debian 13) asks first.
    @Test(arguments: [("2.06-13+deb12u2", false), ("2.12-9", true), (nil, false)] as [(String?, Bool)])
    func theFirmwareEntryFollowsTheTargetsGRUB(version: String?, asks: Bool) async throws {
        let packages =
            ["linux-image-6.1.0-57-cloud-arm64", "grub-efi-arm64-bin"] + (version == nil ? [] : ["grub-common"])
        let job = try Self.job(
            [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4)], arch: .aarch64,
            packages: packages, versions: version.map { ["grub-common": $0] } ?? [:])
        let grub = try #require(GrubConfiguration.make(for: job, commandLine: "console=ttyAMA0,115200"))
        #expect(grub.text.contains("fwsetup --is-supported") == asks, "\(grub.text)")
        #expect(grub.text.contains("menuentry 'UEFI Firmware Settings' --id uefi-firmware {"))
        try await Self.checked(grub.text)
    }

    @Test func rootHoldsTheKernelsAndTheSerialConsoleIsGRUBsToo() async throws {
        let job = try Self.job(
            [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4)],
            packages: ["linux-image-cloud-amd64", "linux-image-6.12.57+deb13-cloud-amd64", "grub-pc"])
        let grub = try #require(GrubConfiguration.make(for: job, commandLine: "console=tty0 console=ttyS0,115200"))
        let uuid = try #require(job.layout.slots.first { $0.role == "/" }?.filesystemUUID)
        let text = grub.text
        try await Self.checked(text)
        #expect(text.contains("serial --unit=0 --speed=115200\nterminal_input console serial\n"))
        #expect(text.contains("  insmod ext2\n  search --no-floppy --fs-uuid --set=root \(uuid)\n"))
        #expect(
            text.contains(
                "  linux /boot/vmlinuz-6.12.57+deb13-cloud-amd64 root=UUID=\(uuid) ro console=tty0 console=ttyS0,115200\n"
            ))
        #expect(
            text.contains("    linux /boot/vmlinuz-6.12.57+deb13-cloud-amd64 root=UUID=\(uuid) ro single console=tty0"))
        #expect(text.contains("  initrd /boot/initrd.img-6.12.57+deb13-cloud-amd64\n"))
        #expect(grub.kernelList == "6.12.57+deb13-cloud-amd64\n")
        // The guest gets it with the kernels to compare with /boot.
        let files = try Self.guestFiles(job)
        #expect(files.contains("grub.cfg") && files.contains("kernels"))
    }

    @Test func aBootPartitionHoldsThemAtItsTop() async throws {
        let job = try Self.job(
            [
                Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .btrfs),
                Partition(mountPoint: "/boot", size: Size(mebibytes: 512), type: .xfs),
            ], packages: ["linux-image-6.1.0-28-amd64", "linux-image-6.1.0-30-amd64"])
        let grub = try #require(GrubConfiguration.make(for: job, commandLine: ""))
        let root = try #require(job.layout.slots.first { $0.role == "/" }?.filesystemUUID)
        let boot = try #require(job.layout.slots.first { $0.role == "/boot" }?.filesystemUUID)
        let text = grub.text
        try await Self.checked(text)
        #expect(text.contains("insmod xfs\n  search --no-floppy --fs-uuid --set=root \(boot)\n"))
        // The newest kernel is the first entry; the submenu has both.
        let first = try #require(text.range(of: "  linux /vmlinuz-"))
        #expect(text[first.upperBound...].hasPrefix("6.1.0-30-amd64 root=UUID=\(root) ro\n"))
        #expect(text.contains("with Linux 6.1.0-28-amd64 (recovery mode)"))
        #expect(grub.kernelList == "6.1.0-28-amd64\n6.1.0-30-amd64\n")
    }

    @Test func arm64UsesTheFirmwaresConsole() async throws {
        let job = try Self.job(
            [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4)], arch: .aarch64,
            packages: ["linux-image-6.12.57+deb13-arm64"])
        let text = try #require(GrubConfiguration.make(for: job, commandLine: "console=ttyAMA0,115200")).text
        try await Self.checked(text)
        #expect(text.contains("terminal_input console\nterminal_output console\n") && !text.contains("serial"))
    }

    /// Encrypted partitions need cryptsetup's unlocking, which update-grub knows: the guest runs it.
    @Test func encryptedLayoutsAndKernellessOnesAreLeftToUpdateGrub() throws {
        let encrypted = try Self.job(
            [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4, passphrase: "secret words")],
            packages: ["linux-image-6.1.0-28-amd64"])
        #expect(GrubConfiguration.make(for: encrypted, commandLine: "") == nil)
        let kernelless = try Self.job(
            [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4)], packages: ["linux-image-amd64"])
        #expect(GrubConfiguration.make(for: kernelless, commandLine: "") == nil)
        let files = try Self.guestFiles(kernelless)
        #expect(!files.contains("grub.cfg"))
    }
}
