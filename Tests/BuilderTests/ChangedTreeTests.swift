import Foundation
import KilnArchive
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder
@testable import Ext4

#if canImport(Glibc)
    import Glibc
#endif

/// A file system written from a base tar plus the guest's changes is the one written from a whole
/// tar of the same tree, byte for byte: what a warm build sends back gives the image a cold one gives.
@Suite(.requires(.program("e2fsck"), .program("tar"), .program("find")))
struct ChangedTreeTests {
    @Test func precedesIsGNUTarsSortByName() {
        let sorted = ["", "a", "a/b", "a/b/c", "a-c", "a.d", "ab", "b", "b/a"]
        #expect(sorted.shuffled().sorted(by: ChangedTree.precedes) == sorted)
        #expect(!ChangedTree.precedes("a", "a"))
    }

    @Test func baseAndChangesGiveTheWholeTreesFileSystem() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kiln-changed-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = FileManager.default
        func write(_ path: String, _ text: String) throws {
            try files.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        }
        func tar(_ arguments: [String]) async throws {
            let (ran, log) = try await Subprocess.output(
                [
                    "tar", "-c", "--format=posix", "--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                    "--sparse",
                ] + arguments)
            try #require(ran.succeeded, "tar: \(log)")
        }

        // The base: what the cached base holds, /boot's files included (they live on another file system).
        let before = "\(directory)/before"
        for name in ["same", "edited", "deleted", "linked"] { try write("\(before)/usr/lib/\(name)", "\(name)\n") }
        link("\(before)/usr/lib/linked", "\(before)/usr/lib/linked-too")
        try write("\(before)/boot/vmlinuz", "kernel\n")
        try write("\(before)/etc/gone/file", "old\n")
        symlink("../usr/lib/same", "\(before)/etc/same")
        try await tar(["-f", "\(directory)/base.tar", "-C", before, "."])

        // The guest's / afterwards: one file edited, one deleted, a folder gone, new ones, /boot empty.
        let after = "\(directory)/after"
        let (copied, copyLog) = try await Subprocess.output(["cp", "-a", before, after])
        try #require(copied.succeeded, "\(copyLog)")
        try "edited twice\n".write(toFile: "\(after)/usr/lib/edited", atomically: false, encoding: .utf8)
        unlink("\(after)/usr/lib/deleted")
        unlink("\(after)/boot/vmlinuz")
        try files.removeItem(atPath: "\(after)/etc/gone")
        try write("\(after)/etc/new/file", "new\n")
        try write("\(after)/usr/lib/added", "added\n")

        try await tar(["-f", "\(directory)/whole.tar", "-C", after, "."])
        // What the guest sends: each entry whose change time moved (here every directory too; the
        // unchanged files, the hard-linked pair among them, stay behind), in --sort=name order.
        try await tar([
            "-f", "\(directory)/changes.tar", "-C", after, "--exclude=./usr/lib/same", "--exclude=./usr/lib/linked",
            "--exclude=./usr/lib/linked-too", "--exclude=./etc/same", ".",
        ])
        let (listed, list) = try await Subprocess.output(["find", after, "-xdev", "-printf", "./%P\\0"])
        try #require(listed.succeeded)

        let slot = DiskLayout.Slot(
            role: "/", startMiB: 0, sizeMiB: 16, typeGUID: "", partitionGUID: "",
            filesystemID: "0e5f3c2a-7d41-4b8e-9a66-2f1d3c4b5a69", filesystem: .ext4, mountOptions: nil, label: "root")
        let epoch: Int64 = 1_900_000_000
        let whole = "\(directory)/whole.img"
        let wholeWriter = try ReproducibleFileSystems.ext4Writer(for: slot, into: whole, sourceDateEpoch: epoch)
        try wholeWriter.addArchive(try ArchiveReader(path: "\(directory)/whole.tar"))
        _ = try wholeWriter.finish()

        let merged = "\(directory)/merged.img"
        let writer = try ReproducibleFileSystems.ext4Writer(for: slot, into: merged, sourceDateEpoch: epoch)
        try ChangedTree(mountPath: "", list: Array(list.utf8)).write(
            base: try ArchiveReader(path: "\(directory)/base.tar"),
            changes: try ArchiveReader(path: "\(directory)/changes.tar"), into: writer)
        _ = try writer.finish()

        let (checked, report) = try await Subprocess.output(["e2fsck", "-f", "-n", merged])
        #expect(checked.succeeded, "e2fsck: \(report)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: merged)) == Data(contentsOf: URL(fileURLWithPath: whole)))

        // A listed path that is neither in the base nor among the changes is an error, not a gap.
        let broken = try ReproducibleFileSystems.ext4Writer(
            for: slot, into: "\(directory)/broken.img", sourceDateEpoch: epoch)
        #expect(throws: BuilderError.self) {
            try ChangedTree(mountPath: "", list: Array((list + "./usr/lib/nowhere\0").utf8)).write(
                base: try ArchiveReader(path: "\(directory)/base.tar"),
                changes: try ArchiveReader(path: "\(directory)/changes.tar"), into: broken)
        }
    }
}
