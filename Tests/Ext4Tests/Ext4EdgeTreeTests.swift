import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// A folder of edge cases (names of 255 bytes, a directory that fills exactly one block and one
/// that needs a second, files one byte either side of a block, symlinks either side of 60 bytes,
/// zero blocks between data) written by the writer and by mke2fs -d, then copied out of both
/// images by debugfs's rdump and compared byte for byte, with every path's type, mode, size, link
/// count and target.
@Suite(.requires(.program("e2fsck"), .program("debugfs"), .program("mke2fs"), .program("find"), .program("diff")))
struct Ext4EdgeTreeTests {
    @Test func edgeCasesComeOutAsMke2fsDashDWritesThem() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let tree = "\(scratch.folder)/tree"
        try Self.makeTree(tree)
        let writer = try Ext4Writer(path: scratch.image, size: 64 << 20, options: Ext4Scratch.options())
        try writer.addTree(tree)
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let oneBlock = try await scratch.debugfs("stat /one-block")
        #expect(oneBlock.contains("Flags: 0x80000") && oneBlock.contains("Size: 4096"))  // linear, full
        #expect(try await scratch.debugfs("stat /two-blocks").contains("Flags: 0x81000"))  // hashed
        let reference = "\(scratch.folder)/mke2fs.img"
        let (made, log) = try await Ext4Scratch.run([
            "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", tree, reference, "64M",
        ])
        #expect(made, "mke2fs: \(log)")

        for (image, out) in [(scratch.image, "ours"), (reference, "theirs")] {
            try FileManager.default.createDirectory(
                atPath: "\(scratch.folder)/\(out)", withIntermediateDirectories: true)
            _ = try await Ext4Scratch.run(["debugfs", "-R", "rdump / \(scratch.folder)/\(out)", image])
        }
        let (same, differences) = try await Ext4Scratch.run([
            "diff", "-r", "--no-dereference", "\(scratch.folder)/ours", "\(scratch.folder)/theirs",
        ])
        #expect(same, "\(differences.prefix(2000))")
        func listing(_ folder: String) async throws -> String {
            try await Ext4Scratch.run(["sh", "-c", "cd \(folder) && find . -printf '%p %y %m %s %n %l\\n' | sort"]).1
        }
        let ours = try await listing("\(scratch.folder)/ours")
        let theirs = try await listing("\(scratch.folder)/theirs")
        #expect(ours.split(separator: "\n").count > 250)
        #expect(ours == theirs)
    }

    static func makeTree(_ root: String) throws {
        let files = FileManager.default
        func write(_ path: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: "\(root)/\(path)"))
        }
        for folder in ["names", "one-block", "two-blocks", "sizes", "links", "sparse"] {
            try files.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        for length in [1, 2, 3, 4, 5, 100, 254, 255] {
            try write("names/" + String(repeating: "n", count: length - 1) + "\(length % 10)", [UInt8(length)])
        }
        try write("names/...", [1])
        try write("names/.hidden", [2])
        try write("names/ünïcödé", [3])
        // "." and ".." take 24 bytes; 203 entries of 20 bytes (names of 9 to 12 bytes) fill 4,084.
        for n in 0..<203 { try write("one-block/f\(String(format: "%08d", n))", []) }
        for n in 0..<204 { try write("two-blocks/f\(String(format: "%08d", n))", []) }
        let pattern = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 % 253 + 1) }
        for size in [0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 12_288 + 17] {
            try write("sizes/\(size)", Array(pattern.prefix(size)))
        }
        // Zero blocks between data: mke2fs -d leaves them holes, and so must the writer.
        try write("sparse/zeros", Array(pattern.prefix(4096)) + [UInt8](repeating: 0, count: 3 * 4096) + [9])
        for length in [1, 59, 60, 61, 200, 4095] {
            try files.createSymbolicLink(
                atPath: "\(root)/links/\(length)", withDestinationPath: String(repeating: "t", count: length))
        }
        try files.linkItem(atPath: "\(root)/sizes/4097", toPath: "\(root)/links/hard")
        try files.setAttributes([.posixPermissions: 0o2711], ofItemAtPath: "\(root)/sizes/1")
        try files.setAttributes([.posixPermissions: 0o1755], ofItemAtPath: "\(root)/sparse")
    }
}
