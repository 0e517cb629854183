import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// Big files, many extents, big directories and big file systems, judged by e2fsck and debugfs.
@Suite(.requires(.program("e2fsck"), .program("debugfs"), .program("sha256sum")))
struct Ext4LimitTests {
    @Test func aFilePastFourGiBKeepsItsSizeAndItsFarData() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 32 << 20, options: Ext4Scratch.options())
        let far: Int64 = (4 << 30) + (768 << 20)
        var contents = Ext4Runs(runs: [(0, Array("start".utf8)), (far, Array("far away".utf8))])
        try writer.add(
            Ext4Entry(path: "huge", kind: .regularFile(size: far + (1 << 20)), permissions: 0o644), contents: &contents)
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let stat = try await scratch.debugfs("stat /huge")
        #expect(stat.contains("Size: \(far + (1 << 20))"))
        #expect(stat.contains("(\(far / 4096)):"))
        #expect(stat.contains("Blockcount: 16"))
    }

    @Test func manyExtentsMakeATreeDeeperThanTheInode() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 64 << 20, options: Ext4Scratch.options())
        // 2,000 blocks of data, each after a hole: 2,000 extents in six leaf blocks, more than the
        // inode's four entries can point at, so one index block between them and the inode.
        var runs: [(Int64, [UInt8])] = []
        var expected = [UInt8](repeating: 0, count: 4000 * 4096)
        for n in 0..<2000 {
            let block = [UInt8](repeating: UInt8(n % 250 + 1), count: 4096)
            runs.append((Int64(2 * n + 1) * 4096, block))
            expected.replaceSubrange((2 * n + 1) * 4096..<(2 * n + 2) * 4096, with: block)
        }
        var contents = Ext4Runs(runs: runs)
        try writer.add(
            Ext4Entry(path: "fragmented", kind: .regularFile(size: Int64(expected.count)), permissions: 0o644),
            contents: &contents)
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let extents = try await scratch.debugfs("ex /fragmented")
        #expect(extents.contains(" 0/ 2   1/  1 "))  // the inode: one index entry
        #expect(extents.contains(" 1/ 2   6/  6 "))  // the index block: six leaves
        #expect(extents.contains(" 2/ 2 340/340 "))
        let stat = try await scratch.debugfs("stat /fragmented")
        #expect(stat.contains("Blockcount: \((2000 + 6 + 1) * 8)"))
        let out = "\(scratch.folder)/fragmented"
        _ = try await scratch.debugfs("dump /fragmented \(out)")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == expected)
    }

    @Test func aDirectoryOfTenThousandEntries() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(
            path: scratch.image, size: 64 << 20, options: Ext4Scratch.options(bytesPerInode: 4096))
        for n in 0..<10_000 {
            try writer.add(
                Ext4Entry(path: "usr/lib/libnumber-\(n).so.1", kind: .regularFile(size: 0), permissions: 0o644))
        }
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let listing = try await scratch.debugfs("ls -p /usr/lib")
        #expect(listing.split(separator: "\n").filter { $0.contains("libnumber-") }.count == 10_000)
        #expect(try await scratch.debugfs("stat /usr/lib/libnumber-9999.so.1").contains("Type: regular"))
        // Hashed: e2fsck's pass 2 has checked every leaf's hash range; debugfs walks the index.
        let tree = try await scratch.debugfs("htree_dump /usr/lib")
        #expect(tree.contains("Root node dump:"))
        #expect(tree.contains("Indirect levels: 0"))
        #expect(!tree.contains("Not a hash-indexed directory"))
        #expect(try await scratch.debugfs("stat /usr/lib").contains("Flags: 0x81000"))
    }

    /// So many entries that the root's 507 index entries cannot point at every leaf: a level of
    /// index nodes between them.
    @Test func aDirectoryTooBigForTheRootIndexGetsIndexNodes() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(
            path: scratch.image, size: 256 << 20, options: Ext4Scratch.options(bytesPerInode: 4096))
        let name = String(repeating: "long-file-name-", count: 8)
        for n in 0..<20_000 {
            try writer.add(Ext4Entry(path: "many/\(name)\(n)", kind: .fifo, permissions: 0o644))
        }
        _ = try writer.finish()
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let tree = try await scratch.debugfs("htree_dump /many")
        #expect(tree.contains("Indirect levels: 1"))
        #expect(try await scratch.debugfs("stat /many/\(name)12345").contains("Type: FIFO"))
    }

    /// The name hash against debugfs's own, for short, 32-byte-crossing and non-ASCII names.
    @Test func theNameHashIsE2fsprogss() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 16 << 20, options: Ext4Scratch.options())
        _ = try writer.finish()
        let seedBytes = Ext4Writer.bytes(of: Ext4Scratch.uuid)
        let seed = (0..<4).map { seedBytes.le32($0 * 4) }
        for name in [
            "a", "libc.so.6", "exactly-thirty-two-bytes-long-ab", "é-ünïcode-and-a-name-longer-than-thirty-two-bytes",
        ] {
            let (major, minor) = Ext4HashTree.halfMD4(Array(name.utf8), seed: seed)
            let output = try await scratch.debugfs(
                "dx_hash -h half_md4 -s \(Ext4Scratch.uuid.uuidString.lowercased()) \(name)")
            let hex = (String(major, radix: 16).leftPadded(8), String(minor, radix: 16).leftPadded(8))
            let expected = "is 0x\(hex.0) (minor 0x\(hex.1))"
            #expect(output.contains(expected), "\(name): \(output)")
        }
    }

    @Test func aFileSystemOfManyGroupsWithDataAcrossThem() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        // 6 GiB: 48 groups, 3 flex groups, superblock backups up to group 27; the 300 MiB file
        // crosses the backups at the start of groups 1 and 3.
        let writer = try Ext4Writer(path: scratch.image, size: 6 << 30, options: Ext4Scratch.options())
        var pattern = Ext4Pattern(size: 300 << 20)
        try writer.add(
            Ext4Entry(path: "data/blob", kind: .regularFile(size: pattern.size), permissions: 0o600), contents: &pattern
        )
        let summary = try writer.finish()
        #expect(summary.blocks == 6 << 18)
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        let out = "\(scratch.folder)/blob"
        _ = try await scratch.debugfs("dump /data/blob \(out)")
        var again = Ext4Pattern(size: pattern.size)
        try again.write(to: "\(scratch.folder)/expected")
        let sums = try await Ext4Scratch.run(["sha256sum", out, "\(scratch.folder)/expected"]).1
        let lines = sums.split(separator: "\n").map { $0.prefix(64) }
        #expect(lines.count == 2 && lines[0] == lines[1])
    }
}

/// A file of a repeating, never-zero pattern, handed over a MiB at a time.
struct Ext4Pattern: Ext4Contents {
    let size: Int64

    init(size: Int64) { self.size = size }

    static let chunk: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) }

    mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        var offset: Int64 = 0
        while offset < size {
            let count = Int(min(Int64(Self.chunk.count), size - offset))
            try Self.chunk.withUnsafeBytes { try body(offset, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            offset += Int64(count)
        }
    }

    mutating func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try forEachRun { _, bytes in try handle.write(contentsOf: Data(bytes)) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
