import Foundation
import KilnSupport
import KilnTestSupport
import SystemPackage
import Testing

@testable import Builder

#if canImport(Glibc)
    import Glibc
#endif

/// The host-side steps of a reproducible build on small images, judged by e2fsprogs (`e2fsck`
/// checks every inode checksum, `debugfs` reads the times back).
struct ReproducibleFileSystemsTests {
    static var hasE2fsprogs: Bool {
        ["/usr/sbin/mke2fs", "/usr/sbin/e2fsck", "/usr/sbin/debugfs"].allSatisfy(FileManager.default.isExecutableFile)
    }

    private func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-repro-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// debugfs's `stat` line for one time: `mtime: 0x5f5e1000:00000000 -- ...`.
    private func times(_ image: String, _ path: String) async throws -> [String: String] {
        let (_, text) = try await Subprocess.output(["debugfs", "-R", "stat \(path)", image])
        var found: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let line = line.trimmingCharacters(in: .whitespaces)
            for name in ["atime", "ctime", "mtime", "crtime"] where line.hasPrefix("\(name): 0x") {
                found[name] = line.split(separator: " ").first { $0.hasPrefix("0x") }.map(String.init)
            }
        }
        return found
    }

    @Test(.requires(hasE2fsprogs, "mke2fs, e2fsck and debugfs (e2fsprogs)"))
    func ext4TimesAreClampedAndChecksumsStayValid() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tree = "\(directory)/tree"
        try FileManager.default.createDirectory(atPath: "\(tree)/etc", withIntermediateDirectories: true)
        try "old\n".write(toFile: "\(tree)/etc/old", atomically: false, encoding: .utf8)
        try "new\n".write(toFile: "\(tree)/etc/new", atomically: false, encoding: .utf8)
        let epoch: Int64 = 1_700_000_000
        let older = Date(timeIntervalSince1970: TimeInterval(epoch - 86_400))
        try FileManager.default.setAttributes([.modificationDate: older], ofItemAtPath: "\(tree)/etc/old")
        let image = "\(directory)/fs.img"
        let (made, log) = try await Subprocess.output(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-O", "metadata_csum", "-d", tree, image, "8M"])
        try #require(made.succeeded, "mke2fs: \(log)")

        let descriptor = open(image, O_RDWR)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let size = lseek(descriptor, 0, SEEK_END)
        let changed = try Ext4Timestamps(
            region: DiskRegion(
                descriptor: FileDescriptor(rawValue: descriptor), path: image, start: 0, length: Int64(size)),
            epoch: epoch
        ).apply()
        #expect(changed > 0)

        let (checked, report) = try await Subprocess.output(["e2fsck", "-f", "-n", image])
        #expect(checked.succeeded, "e2fsck: \(report)")
        let hex = { (value: Int64) in "0x" + String(value, radix: 16).leftPadded(8) + ":00000000" }
        // Written now (after the epoch): every time becomes the epoch.
        let new = try await times(image, "/etc/new")
        #expect(new == ["atime": hex(epoch), "ctime": hex(epoch), "mtime": hex(epoch), "crtime": hex(epoch)])
        // Older than the epoch: its own modification time stays, and the others follow it.
        let old = try await times(image, "/etc/old")
        #expect(old["mtime"] == hex(epoch - 86_400) && old["ctime"] == hex(epoch - 86_400))
        #expect(old["atime"] == hex(epoch - 86_400) && old["crtime"] == hex(epoch))
        // A second pass finds nothing left to change.
        #expect(
            try Ext4Timestamps(
                region: DiskRegion(
                    descriptor: FileDescriptor(rawValue: descriptor), path: image, start: 0, length: Int64(size)),
                epoch: epoch
            ).apply() == 0)
    }

    @Test func sparseCopyReplacesOnlyThePartitionAndKeepsItsBytes() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mib = 1 << 20
        var source = [UInt8](repeating: 0, count: 4 * mib)
        for index in stride(from: mib + 100, to: 3 * mib, by: 9973) { source[index] = UInt8(index % 251 | 1) }
        let target = [UInt8](repeating: 0xEE, count: 4 * mib)
        try Data(source).write(to: URL(fileURLWithPath: "\(directory)/source"))
        try Data(target).write(to: URL(fileURLWithPath: "\(directory)/target"))

        let input = open("\(directory)/source", O_RDONLY)
        let output = open("\(directory)/target", O_RDWR)
        defer {
            close(input)
            close(output)
        }
        let region = DiskRegion(
            descriptor: FileDescriptor(rawValue: output), path: "target", start: Int64(mib), length: Int64(2 * mib))
        try ReproducibleFileSystems.copySparse(from: FileDescriptor(rawValue: input), path: "source", into: region)

        let result = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/target")))
        #expect(result[..<mib] == target[..<mib])
        #expect(result[mib..<3 * mib] == source[mib..<3 * mib])
        #expect(result[(3 * mib)...] == target[(3 * mib)...])
    }

    /// The guest's tree as GNU tar writes it in the builder (sorted, numeric owners, extended
    /// attributes, holes), on a partition of the file system disk, becomes that partition's ext4 in
    /// the image: the layout's UUID and label, the same contents, owners and links, clean to e2fsck.
    @Test(.requires(hasE2fsprogs, "mke2fs, e2fsck and debugfs (e2fsprogs)"))
    func treeSentAsATarBecomesThePartitionsExt4() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tree = "\(directory)/tree"
        let files = FileManager.default
        try files.createDirectory(atPath: "\(tree)/usr/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho kiln\n".write(toFile: "\(tree)/usr/bin/hello", atomically: false, encoding: .utf8)
        chown("\(tree)/usr/bin/hello", 0, 50)
        chmod("\(tree)/usr/bin/hello", 0o4755)
        link("\(tree)/usr/bin/hello", "\(tree)/usr/bin/hello-again")
        symlink(String(repeating: "long/", count: 20) + "target", "\(tree)/usr/bin/far")
        mkfifo("\(tree)/usr/fifo", 0o600)
        // A file with a hole: 1 MiB of nothing, then a block of data.
        let sparse = open("\(tree)/usr/sparse", O_CREAT | O_WRONLY, 0o644)
        try #require(sparse >= 0)
        _ = pwrite(sparse, "end", 3, 1 << 20)
        close(sparse)
        // cap_net_bind_service=ep, as setcap stores it.
        let (capped, capLog) = try await Subprocess.output([
            "python3", "-c",
            "import os, sys; os.setxattr(sys.argv[1], 'security.capability', bytes([1, 0, 0, 2, 0, 4] + [0] * 14))",
            "\(tree)/usr/bin/hello",
        ])
        try #require(capped.succeeded, "setxattr: \(capLog)")

        let tar = "\(directory)/tree.tar"
        let (made, log) = try await Subprocess.output([
            "tar", "-c", "-f", tar, "-C", tree, "--format=posix", "--pax-option=delete=atime,delete=ctime",
            "--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--sparse", ".",
        ])
        try #require(made.succeeded, "tar: \(log)")
        // Partition 2 of a 20 MiB disk starts at 2 MiB on both disks.
        let slot = DiskLayout.Slot(
            role: "/", startMiB: 2, sizeMiB: 16, typeGUID: "", partitionGUID: "",
            filesystemID: "6f2c1d1e-3c4b-4a5d-9e8f-0123456789ab", filesystem: .ext4, mountOptions: nil, label: "root")
        let fileSystemDisk = "\(directory)/filesystems.raw"
        try #require(files.createFile(atPath: fileSystemDisk, contents: nil) && truncate(fileSystemDisk, 20 << 20) == 0)
        let source = open(fileSystemDisk, O_RDWR)
        try #require(source >= 0)
        defer { close(source) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tar)))
        #expect(pwrite(source, bytes, bytes.count, 2 << 20) == bytes.count)
        let raw = "\(directory)/disk.raw"
        try #require(files.createFile(atPath: raw, contents: nil) && truncate(raw, 20 << 20) == 0)

        let summary = try ReproducibleFileSystems.writeExt4(
            slot, into: raw, fromTarAt: 2 << 20, of: FileDescriptor(rawValue: source),
            name: "filesystems.raw partition 2",
            sourceDateEpoch: 1_700_000_000)
        // The reserved inodes, lost+found, then the tree's 6 (one file has two names).
        #expect(summary.inodes - summary.freeInodes == 11 + 6)

        let image = "\(raw)?offset=\(2 << 20)"
        let (checked, report) = try await Subprocess.output(["e2fsck", "-f", "-n", image])
        #expect(checked.succeeded, "e2fsck: \(report)")
        let (_, header) = try await Subprocess.output(["dumpe2fs", "-h", image])
        #expect(
            header.contains("6f2c1d1e-3c4b-4a5d-9e8f-0123456789ab") && header.contains("volume name:   root"),
            "\(header)")
        let (_, hello) = try await Subprocess.output(["debugfs", "-R", "stat /usr/bin/hello", image])
        #expect(
            hello.contains("Mode:  04755") && hello.contains("Links: 2") && hello.contains("Group:    50"), "\(hello)")
        #expect(hello.contains("security.capability"), "\(hello)")
        let (_, text) = try await Subprocess.output(["debugfs", "-R", "cat /usr/bin/hello-again", image])
        #expect(text.contains("echo kiln"))
        let (_, far) = try await Subprocess.output(["debugfs", "-R", "stat /usr/bin/far", image])
        #expect(far.contains("Type: symlink") && far.contains("Size: 106"), "\(far)")
        let (_, fifo) = try await Subprocess.output(["debugfs", "-R", "stat /usr/fifo", image])
        #expect(fifo.contains("Type: FIFO"), "\(fifo)")
        // The hole stays a hole: one data block, at the file's last block.
        let (_, hole) = try await Subprocess.output(["debugfs", "-R", "stat /usr/sparse", image])
        #expect(hole.contains("Size: 1048579") && hole.contains("(256):"), "\(hole)")

        // A tar cut short is a clear error, not a file system.
        #expect(ftruncate(source, off_t((2 << 20) + bytes.count / 2)) == 0)
        #expect(throws: BuilderError.self) {
            try ReproducibleFileSystems.writeExt4(
                slot, into: raw, fromTarAt: 2 << 20, of: FileDescriptor(rawValue: source),
                name: "filesystems.raw partition 2",
                sourceDateEpoch: 1_700_000_000)
        }
    }
}
