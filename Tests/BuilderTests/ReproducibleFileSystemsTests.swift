import Foundation
import KilnSupport
import KilnTestSupport
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
            region: DiskRegion(descriptor: descriptor, path: image, start: 0, length: Int64(size)), epoch: epoch
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
                region: DiskRegion(descriptor: descriptor, path: image, start: 0, length: Int64(size)), epoch: epoch
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
        let region = DiskRegion(descriptor: output, path: "target", start: Int64(mib), length: Int64(2 * mib))
        try ReproducibleFileSystems.copySparse(from: input, path: "source", into: region)

        let result = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/target")))
        #expect(result[..<mib] == target[..<mib])
        #expect(result[mib..<3 * mib] == source[mib..<3 * mib])
        #expect(result[(3 * mib)...] == target[(3 * mib)...])
    }
}
