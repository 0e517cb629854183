import Foundation
import KilnArchive
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

#if canImport(Glibc)
    import Glibc
#endif

/// The description's files laid over a base tar on the host give the tree that writing them into
/// the unpacked base gives: judged by GNU tar's sorted archive of a real tree edited the same way.
@Suite(.requires(.program("tar")))
struct TreeOverlayTests {
    @Test func overlayGivesTheTreeThatEditingTheFilesGives() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kiln-overlay-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = FileManager.default
        func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
            try files.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, mode_t(mode))
        }
        func tar(_ tree: String, to archive: String) async throws {
            let (ran, log) = try await Subprocess.output([
                "tar", "-c", "--format=posix", "--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                "--sparse", "-f", archive, "-C", tree, ".",
            ])
            try #require(ran.succeeded, "tar: \(log)")
        }
        let epoch: Int64 = 1_700_000_000
        let old = "@\(epoch - 86_400)"

        // The base: a small configured system.
        let before = "\(directory)/before"
        try write("\(before)/etc/hostname", "debian\n")
        try write("\(before)/etc/default/grub", "GRUB_TIMEOUT=5\n")
        try write("\(before)/etc/motd", "hello\n")
        try write("\(before)/etc/gone/inside/file", "old\n")
        try write("\(before)/usr/bin/tool", "#!/bin/sh\n", mode: 0o755)
        link("\(before)/usr/bin/tool", "\(before)/usr/bin/tool-too")
        symlink("/usr/share/zoneinfo/Etc/UTC", "\(before)/etc/localtime")
        try files.createDirectory(atPath: "\(before)/srv/empty", withIntermediateDirectories: true)
        let (touched, touchLog) = try await Subprocess.output([
            "sh", "-c", "find \"$1\" -exec touch -h -d \"$2\" {} +", "sh", before, old,
        ])
        try #require(touched.succeeded, "\(touchLog)")
        try await tar(before, to: "\(directory)/base.tar")

        // The same edits, on a copy of the tree and as an overlay.
        let after = "\(directory)/after"
        let (copied, copyLog) = try await Subprocess.output(["cp", "-a", before, after])
        try #require(copied.succeeded, "\(copyLog)")
        var overlay = TreeOverlay()
        func file(_ path: String, _ text: String, mode: UInt32 = 0o644) throws {
            // As tar -x writes a file that is there: a new one in its place.
            unlink("\(after)/\(path)")
            try write("\(after)/\(path)", text, mode: Int(mode))
            overlay.add(
                ArchiveEntry(
                    path: path, kind: .file, permissions: mode, modificationTime: epoch, size: Int64(text.utf8.count)),
                source: .bytes(Array(text.utf8)))
        }
        func folder(_ path: String) throws {
            try files.createDirectory(atPath: "\(after)/\(path)", withIntermediateDirectories: true)
            overlay.add(ArchiveEntry(path: path, kind: .directory, permissions: 0o755, modificationTime: epoch))
        }
        try folder("etc")
        try file("etc/hostname", "kiln\n")
        try folder("etc/default")
        try file("etc/default/grub", "GRUB_TIMEOUT=1\n")
        try folder("etc/ssh.d")
        try file("etc/ssh.d/keys", "ssh-ed25519 AAAA\n", mode: 0o600)
        try file("etc/aaa", "first in /etc\n")
        try file("zzz", "last of all\n")
        try files.removeItem(atPath: "\(after)/etc/gone")
        overlay.remove("etc/gone")
        unlink("\(after)/etc/localtime")
        symlink("/usr/share/zoneinfo/Europe/Paris", "\(after)/etc/localtime")
        overlay.add(
            ArchiveEntry(
                path: "etc/localtime", kind: .symlink(target: "/usr/share/zoneinfo/Europe/Paris"), permissions: 0o777,
                modificationTime: epoch))
        try await tar(after, to: "\(directory)/expected.tar")

        try overlay.write(over: "\(directory)/base.tar", to: "\(directory)/overlaid.tar", sourceDateEpoch: epoch)
        // Times past SOURCE_DATE_EPOCH are clamped to it in the image, as the ext4 writer does.
        func entries(_ archive: String) throws -> [String] {
            let reader = try ArchiveReader(path: archive)
            var lines: [String] = []
            while let entry = try reader.next() {
                let data = entry.kind == .file ? try reader.readData() : []
                let time = min(entry.modificationTime, epoch)
                let kind =
                    entry.kind == .file
                    ? "file \(String(decoding: data, as: UTF8.self).debugDescription)" : "\(entry.kind)"
                let mode = entry.kind == .directory || entry.kind == .file ? String(entry.permissions, radix: 8) : "-"
                lines.append("\(entry.path) \(kind) \(mode) \(entry.uid):\(entry.gid) \(time)")
            }
            return lines
        }
        let expected = try entries("\(directory)/expected.tar")
        let overlaid = try entries("\(directory)/overlaid.tar")
        #expect(overlaid == expected, "\(overlaid.joined(separator: "\n"))\n---\n\(expected.joined(separator: "\n"))")
        #expect(overlaid.contains { $0.hasPrefix("usr/bin/tool-too hardlink") })
    }
}
