import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

#if canImport(Glibc)
    import Glibc
#endif

/// A configured base (GNU tar, as the builder guest saves it) laid out by kiln into the disk's ext4
/// partitions, each entry on the file system mounted where it lives: judged by e2fsck and debugfs.
@Suite(.requires(.program("e2fsck"), .program("debugfs"), .program("tar")))
struct BaseFileSystemsTests {
    static let hardware = Hardware(
        partitions: [
            Partition(mountPoint: "/", size: Size(mebibytes: 64), type: .ext4),
            Partition(mountPoint: "/boot", size: Size(mebibytes: 32), type: .ext4),
            Partition(mountPoint: "/var/lib", size: Size(mebibytes: 32), type: .ext4),
            Partition(mountPoint: "swap", size: Size(mebibytes: 16), type: .swap),
        ], firmware: .hybrid)

    @Test func eachEntryLandsOnTheFileSystemMountedWhereItLives() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-base-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tree = "\(directory)/tree"
        let files = FileManager.default
        for folder in ["boot/grub", "var/lib/dpkg", "usr/bin", "etc"] {
            try files.createDirectory(atPath: "\(tree)/\(folder)", withIntermediateDirectories: true)
        }
        try "kernel\n".write(toFile: "\(tree)/boot/vmlinuz-6.1", atomically: false, encoding: .utf8)
        try "Package: base-files\n".write(toFile: "\(tree)/var/lib/dpkg/status", atomically: false, encoding: .utf8)
        link("\(tree)/var/lib/dpkg/status", "\(tree)/var/lib/dpkg/status-again")
        try "tool\n".write(toFile: "\(tree)/usr/bin/tool", atomically: false, encoding: .utf8)
        chmod("\(tree)/boot", 0o700)
        let tar = "\(directory)/base.tar"
        let (made, log) = try await Subprocess.output([
            "tar", "-c", "-f", tar, "-C", tree, "--format=posix", "--sort=name", "--numeric-owner", "--xattrs",
            "--xattrs-include=*", "--acls", "--sparse", ".",
        ])
        try #require(made.succeeded, "tar: \(log)")

        let layout = try DiskLayout(hardware: Self.hardware, seed: "base-test")
        let base = try #require(BaseFileSystems(layout: layout))
        let raw = "\(directory)/disk.raw"
        try #require(files.createFile(atPath: raw, contents: nil) && truncate(raw, off_t(layout.sizeMiB << 20)) == 0)
        let summaries = try base.write(base: tar, into: raw, sourceDateEpoch: 1_700_000_000)
        #expect(summaries.count == 3)

        func image(_ role: String) throws -> String {
            let slot = try #require(layout.slots.first { $0.role == role })
            return "\(raw)?offset=\(slot.startMiB << 20)"
        }
        for role in ["/", "/boot", "/var/lib"] {
            let (checked, report) = try await Subprocess.output(["e2fsck", "-f", "-n", try image(role)])
            #expect(checked.succeeded, "e2fsck \(role): \(report)")
        }
        let (_, root) = try await Subprocess.output(["debugfs", "-R", "ls -p /", try image("/")])
        #expect(root.contains("/boot/") && root.contains("/usr/") && root.contains("/var/"), "\(root)")
        let (_, emptyBoot) = try await Subprocess.output(["debugfs", "-R", "ls -p /boot", try image("/")])
        #expect(!emptyBoot.contains("vmlinuz"), "\(emptyBoot)")
        // The mount point's mode is the mounted file system's root's, as the guest saw it.
        let (_, boot) = try await Subprocess.output(["debugfs", "-R", "stat /", try image("/boot")])
        #expect(boot.contains("Mode:  0700"), "\(boot)")
        let (_, kernel) = try await Subprocess.output(["debugfs", "-R", "cat /vmlinuz-6.1", try image("/boot")])
        #expect(kernel.hasSuffix("\nkernel\n"), "\(kernel)")
        let (_, status) = try await Subprocess.output([
            "debugfs", "-R", "stat /dpkg/status-again", try image("/var/lib"),
        ])
        #expect(status.contains("Links: 2"), "\(status)")
        let (_, tool) = try await Subprocess.output(["debugfs", "-R", "cat /usr/bin/tool", try image("/")])
        #expect(tool.hasSuffix("\ntool\n"), "\(tool)")

        // A layout with a file system kiln does not write keeps the guest's path.
        let xfs = Hardware(
            partitions: [
                Partition(mountPoint: "/", size: Size(mebibytes: 64), type: .ext4),
                Partition(mountPoint: "/srv", size: Size(mebibytes: 300), type: .xfs),
            ], firmware: .bios)
        #expect(BaseFileSystems(layout: try DiskLayout(hardware: xfs, seed: "base-test")) == nil)
    }
}
