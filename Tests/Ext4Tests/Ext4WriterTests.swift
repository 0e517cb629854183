import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

@Suite(.requires(.program("e2fsck"), .program("debugfs"), .program("dumpe2fs")))
struct Ext4WriterTests {
    @Test func emptyFileSystemIsCleanWithDebianFeatures() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 64 << 20, options: Ext4Scratch.options())
        let summary = try writer.finish()
        #expect(summary.blocks == 16384)

        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let (_, header) = try await Ext4Scratch.run(["dumpe2fs", "-h", scratch.image])
        let features = header.split(separator: "\n").first { $0.hasPrefix("Filesystem features:") } ?? ""
        #expect(
            features.split(separator: " ").dropFirst(2).sorted() == [
                "64bit", "dir_index", "dir_nlink", "ext_attr", "extent", "extra_isize", "filetype", "flex_bg",
                "has_journal", "huge_file", "large_file", "metadata_csum", "sparse_super",
            ])
        #expect(header.contains("Filesystem UUID:          6a1e0f3c-2b7d-4c5e-9f10-1234567890ab"))
        #expect(header.contains("Directory Hash Seed:      6a1e0f3c-2b7d-4c5e-9f10-1234567890ab"))
        #expect(header.contains("Filesystem volume name:   kiln-test"))
        #expect(header.contains("Block size:               4096"))
        #expect(header.contains("Inode size:\t          256"))
        #expect(header.contains("Checksum type:            crc32c"))
        #expect(header.contains("Total journal blocks:     1024"))
        #expect(header.contains("Filesystem created:       Tue Nov 14 22:13:20 2023"))
        let root = try await scratch.debugfs("ls -l /")
        #expect(root.contains("lost+found"))
    }

    /// mke2fs with kiln's options (and no resize inode) on an empty 6 GiB file system: dumpe2fs must
    /// print the same superblock, but for what mke2fs alone records (the overhead it computed, the
    /// kilobytes it wrote, and so the checksum), and every group's backups, bitmaps and inode table in
    /// the same blocks. (mke2fs places the journal mid-disk and marks untouched groups uninitialized;
    /// free counts and flags of groups differ for that.)
    @Test(.requires(.program("mke2fs"))) func theSuperblockAndGroupLayoutAreMke2fss() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 6 << 30, options: Ext4Scratch.options())
        _ = try writer.finish()
        let reference = "\(scratch.folder)/mke2fs.img"
        let id = Ext4Scratch.uuid.uuidString.lowercased()
        let (made, log) = try await Ext4Scratch.run([
            "env", "E2FSPROGS_FAKE_TIME=\(Ext4Scratch.epoch)", "mke2fs", "-q", "-F", "-t", "ext4", "-O",
            "^resize_inode",
            "-L", "kiln-test", "-U", id, "-E", "hash_seed=\(id),lazy_itable_init=0,lazy_journal_init=0", reference,
            "6G",
        ])
        #expect(made, "mke2fs: \(log)")
        func report(_ image: String) async throws -> [String] {
            let lines = try await Ext4Scratch.run(["dumpe2fs", image]).1.split(separator: "\n").map(String.init)
            let header = lines.prefix { !$0.hasPrefix("Group 0:") }.filter {
                !$0.hasPrefix("Overhead clusters:") && !$0.hasPrefix("Lifetime writes:") && !$0.hasPrefix("Checksum:")
                    && !$0.hasPrefix("dumpe2fs ")
            }
            let layout =
                lines.filter { $0.contains("superblock at") || $0.contains(" at ") && $0.contains("bitmap") }
                .map { $0.split(separator: ",").prefix(1).joined() } + lines.filter { $0.contains("Inode table at") }
            return header + layout
        }
        let ours = try await report(scratch.image)
        let theirs = try await report(reference)
        #expect(ours.count == theirs.count)
        #expect(ours.count > 150)  // 48 groups: each one's backups, bitmaps and table
        let mismatch = zip(ours, theirs).first { $0 != $1 }
        #expect(mismatch == nil, "ours: \(mismatch?.0 ?? ""), mke2fs: \(mismatch?.1 ?? "")")
    }

    @Test func aRegionAtAnOffsetLeavesTheRestOfTheDiskAlone() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let marker = [UInt8](repeating: 0xA5, count: 4096)
        #expect(FileManager.default.createFile(atPath: scratch.image, contents: Data(marker)))
        let writer = try Ext4Writer(
            path: scratch.image, offset: 1 << 20, size: 32 << 20, options: Ext4Scratch.options())
        try writer.add(Ext4Entry(path: "etc/hostname", kind: .regularFile(size: 0), permissions: 0o644))
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck("\(scratch.image)?offset=\(1 << 20)")
        #expect(clean, "e2fsck: \(report)")
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: scratch.image)).readData(ofLength: 4096)
        #expect(Array(head) == marker)
    }

    @Test func theSameEntriesGiveTheSameBytes() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        var digests: [String] = []
        for run in 0..<2 {
            let path = "\(scratch.folder)/\(run).img"
            let writer = try Ext4Writer(path: path, size: 48 << 20, options: Ext4Scratch.options())
            try Ext4Sample.addEveryKind(to: writer)
            _ = try writer.finish()
            digests.append(try await Ext4Scratch.run(["sha256sum", path]).1.prefix(64).description)
        }
        #expect(digests[0] == digests[1])
    }
}
