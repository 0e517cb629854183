import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// Every kind of entry, written by the writer and read back by debugfs, with e2fsck's verdict.
@Suite(.requires(.program("e2fsck"), .program("debugfs")))
struct Ext4EntryKindTests {
    let scratch: Ext4Scratch

    init() throws {
        scratch = try Ext4Scratch()
        let writer = try Ext4Writer(path: scratch.image, size: 48 << 20, options: Ext4Scratch.options())
        try Ext4Sample.addEveryKind(to: writer)
        _ = try writer.finish()
    }

    func stat(_ path: String) async throws -> String { try await scratch.debugfs("stat \(path)") }

    func dump(_ path: String) async throws -> [UInt8] {
        let out = "\(scratch.folder)/dump-\(UUID().uuidString)"
        _ = try await scratch.debugfs("dump \(path) \(out)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    @Test func e2fsckFindsNothingToFix() async throws {
        defer { scratch.remove() }
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
    }

    @Test func filesKeepTheirBytesModesOwnersAndClampedTimes() async throws {
        defer { scratch.remove() }
        #expect(try await dump("/etc/hostname") == Ext4Sample.hostname)
        #expect(try await dump("/usr/bin/tool") == Ext4Sample.tool)
        #expect(try await dump("/usr/bin/tool2") == Ext4Sample.tool)
        let hostname = try await stat("/etc/hostname")
        #expect(hostname.contains("Type: regular    Mode:  0644"))
        #expect(hostname.contains("mtime: 0x5f5e1001"))  // 1_600_000_001, before the epoch: kept
        let su = try await stat("/usr/bin/su")
        #expect(su.contains("Mode:  04755"))
        let notes = try await stat("/home/ops/notes")
        #expect(notes.contains("User: 100000   Group: 100001"))
        #expect(notes.contains("mtime: 0x6553f100:00000000"))  // 2_000_000_000 clamped to the epoch
        #expect(notes.contains("crtime: 0x6553f100:00000000"))
        let home = try await stat("/home/ops")
        #expect(home.contains("Type: directory    Mode:  0700"))
        let bin = try await stat("/usr/bin")
        #expect(bin.contains("Mode:  0750"))
        #expect(bin.contains("Group:    50"))
        let tmp = try await stat("/tmp")
        #expect(tmp.contains("Mode:  01777"))
        let tool = try await stat("/usr/bin/tool")
        #expect(tool.contains("Links: 2"))
        #expect(tool.contains("Inode: \(try await inodeNumber("/usr/bin/tool2"))"))
        let empty = try await stat("/var/empty")
        #expect(empty.contains("Size: 0"))
    }

    @Test func holesAndZeroBlocksAreNotWritten() async throws {
        defer { scratch.remove() }
        #expect(try await dump("/var/lib/sparse") == Ext4Sample.sparseBytes)
        let sparse = try await stat("/var/lib/sparse")
        #expect(sparse.contains("Size: 1048576"))
        #expect(sparse.contains("Blockcount: 24"))  // blocks 0, 128 and 129 only
        #expect(sparse.contains("(0):"))
        #expect(sparse.contains("(128-129):"))
    }

    @Test func symlinksDevicesFifosAndSockets() async throws {
        defer { scratch.remove() }
        let fast = try await stat("/usr/bin/fast")
        #expect(fast.contains("Type: symlink"))
        #expect(fast.contains("Fast link dest: \"tool\""))
        let slow = try await stat("/usr/bin/slow")
        #expect(slow.contains("Type: symlink"))
        #expect(slow.contains("Size: \(Ext4Sample.longTarget.utf8.count)"))
        #expect(try await dump("/usr/bin/slow") == Array(Ext4Sample.longTarget.utf8))
        let null = try await stat("/dev/null")
        #expect(null.contains("Type: character special    Mode:  0666"))
        #expect(null.contains("Device major/minor number: 01:03"))
        let sda = try await stat("/dev/sda")
        #expect(sda.contains("Type: block special"))
        #expect(sda.contains("Device major/minor number: 08:00"))
        let big = try await stat("/dev/big")
        #expect(big.contains("Device major/minor number: 300:70000"))
        #expect(try await stat("/run/initctl").contains("Type: FIFO"))
        #expect(try await stat("/run/socket").contains("Type: socket"))
    }

    func inodeNumber(_ path: String) async throws -> String {
        let output = try await scratch.debugfs("stat \(path)")
        return output.split(separator: "\n").first { $0.hasPrefix("Inode: ") }?.split(separator: " ")[1].description
            ?? "?"
    }
}
