import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// The writer against `mke2fs -d` on the same folder: the same names, types, modes, owners, sizes,
/// link counts, link targets and bytes, read back from both images by debugfs.
@Suite(.requires(.program("e2fsck"), .program("debugfs"), .program("mke2fs")))
struct Ext4AgainstMke2fsTests {
    @Test func aFolderGivesWhatMke2fsDashDGives() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let tree = "\(scratch.folder)/tree"
        try Self.makeTree(tree)

        let writer = try Ext4Writer(path: scratch.image, size: 64 << 20, options: Ext4Scratch.options())
        try writer.addTree(tree)
        _ = try writer.finish()
        let reference = "\(scratch.folder)/mke2fs.img"
        let (made, log) = try await Ext4Scratch.run([
            "mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-O", "^resize_inode", "-d", tree,
            reference, "64M",
        ])
        #expect(made, "mke2fs: \(log)")
        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")

        let paths = [
            "/", "/etc", "/etc/hostname", "/etc/motd", "/usr", "/usr/bin", "/usr/bin/tool", "/usr/bin/tool2",
            "/usr/bin/sh", "/usr/share/long", "/var/sparse", "/var/empty", "/var/run", "/srv/setuid", "/srv/fifo",
        ]
        for path in paths {
            let ours = Self.comparable(try await scratch.debugfs("stat \(path)"))
            let theirs = Self.comparable(try await Ext4Scratch.run(["debugfs", "-R", "stat \(path)", reference]).1)
            #expect(ours.count >= 3 && ours == theirs, "\(path)")
            if ours.contains("Type: regular") || path == "/usr/share/long" {
                let a = "\(scratch.folder)/a", b = "\(scratch.folder)/b"
                _ = try await scratch.debugfs("dump \(path) \(a)")
                _ = try await Ext4Scratch.run(["debugfs", "-R", "dump \(path) \(b)", reference])
                #expect(FileManager.default.contentsEqual(atPath: a, andPath: b), "\(path)")
            }
        }
        let ours = try await scratch.debugfs("ls -p /usr/bin")
        let theirs = try await Ext4Scratch.run(["debugfs", "-R", "ls -p /usr/bin", reference]).1
        #expect(Self.names(ours) == Self.names(theirs))
    }

    /// What must match in debugfs's `stat`: type, mode, owner, size, links, fast link target; not inode
    /// numbers, times (mke2fs -d copies them unclamped), block numbers or checksums.
    static func comparable(_ stat: String) -> [String] {
        var kept: [String] = []
        for line in stat.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.hasPrefix("Inode:") { kept.append(words.dropFirst(2).joined(separator: " ")) }
            if line.hasPrefix("User:") { kept.append(line.replacingOccurrences(of: "Project:     0   ", with: "")) }
            if line.hasPrefix("Links:") { kept.append(String(words.prefix(2).joined(separator: " "))) }
            if line.hasPrefix("Fast link dest:") || line.hasPrefix("Device major") { kept.append(String(line)) }
        }
        return kept
    }

    static func names(_ listing: String) -> [String] {
        listing.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "/", omittingEmptySubsequences: false)
            return fields.count > 5 ? String(fields[5]) : nil
        }.sorted()
    }

    static func makeTree(_ root: String) throws {
        let files = FileManager.default
        for folder in ["etc", "usr/bin", "usr/share", "var", "srv"] {
            try files.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        try Data("lab-07\n".utf8).write(to: URL(fileURLWithPath: "\(root)/etc/hostname"))
        try Data(repeating: 0x4B, count: 70_000).write(to: URL(fileURLWithPath: "\(root)/etc/motd"))
        try Data((0..<9000).map { UInt8(truncatingIfNeeded: $0) }).write(
            to: URL(fileURLWithPath: "\(root)/usr/bin/tool"))
        try files.linkItem(atPath: "\(root)/usr/bin/tool", toPath: "\(root)/usr/bin/tool2")
        try files.createSymbolicLink(atPath: "\(root)/usr/bin/sh", withDestinationPath: "dash")
        try files.createSymbolicLink(
            atPath: "\(root)/usr/share/long", withDestinationPath: String(repeating: "a-long-way/", count: 10) + "end")
        try Data().write(to: URL(fileURLWithPath: "\(root)/var/empty"))
        try files.createDirectory(atPath: "\(root)/var/run", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(root)/srv/setuid"))
        try files.setAttributes([.posixPermissions: 0o4750], ofItemAtPath: "\(root)/srv/setuid")
        try files.setAttributes([.posixPermissions: 0o700], ofItemAtPath: "\(root)/var/run")
        #expect(mkfifo("\(root)/srv/fifo", 0o620) == 0)
        // A sparse file: a MiB with data only at its start and its end.
        guard files.createFile(atPath: "\(root)/var/sparse", contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let sparse = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(root)/var/sparse"))
        try sparse.write(contentsOf: Data("head".utf8))
        try sparse.seek(toOffset: (1 << 20) - 4)
        try sparse.write(contentsOf: Data("tail".utf8))
        try sparse.close()
    }
}
