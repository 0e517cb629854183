import Ext4
import Ext4Archive
import Foundation
import KilnArchive

#if canImport(Glibc)
    import Glibc
#endif

/// The archive readers' target: the bytes as libarchive sees any archive kiln opens (a `.deb`'s `ar`,
/// its control and data tars in every compression, the builder guest's cpio), then as a Debian
/// package, then as the tar stream the ext4 writer lays out on a disk (issue 14's seam: a header
/// that lies about its size, a name with `..`, a hard link to nothing must fail cleanly).
extension FuzzTarget {
    private static let scratch = scratchFolder("archive")

    /// At most this many entries and bytes of data per input: an archive is allowed to be large,
    /// the fuzzer's time is not.
    private static let entryLimit = 256
    private static let byteLimit = 8 << 20

    static func archive(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        readEntries(bytes)
        let path = "\(scratch)/input.deb"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
        defer { unlink(path) }
        let package = DebianArchive(path: path)
        _ = try? package.controlMembers()
        var entries = 0
        try? package.forEachDataEntry { (_, reader) throws(ArchiveError) in
            entries += 1
            guard entries <= entryLimit else { throw ArchiveError(path, "enough") }
            if entries % 2 == 0 { try reader.skipData() } else { _ = try reader.readData() }
        }
        writeExt4(bytes)
    }

    /// Every entry and, up to the byte limit, its data blocks; a nested member read as an archive of
    /// its own, as a `.deb`'s data.tar.xz is.
    private static func readEntries(_ bytes: [UInt8]) {
        guard let reader = try? ArchiveReader(bytes: bytes, name: "fuzz") else { return }
        var read = 0
        for _ in 0..<entryLimit {
            guard let entry = try? reader.next() else { return }
            if entry.path.hasSuffix(".tar") || entry.path.contains(".tar.") {
                if let inner = try? ArchiveReader(member: reader, name: entry.path) {
                    while read < byteLimit, let _ = try? inner.next() {
                        try? inner.readData { (chunk) throws(ArchiveError) in read += chunk.count }
                    }
                }
                continue
            }
            try? reader.readDataBlocks { (_, block) throws(ArchiveError) in
                read += block.count
                if read > byteLimit { throw ArchiveError("fuzz", "enough") }
            }
        }
    }

    /// The bytes as a tar for the ext4 writer, into a 16 MiB image on tmpfs, finished when every
    /// entry went in.
    private static func writeExt4(_ bytes: [UInt8]) {
        guard let reader = try? ArchiveReader(bytes: bytes, name: "fuzz") else { return }
        let image = "\(scratch)/image.ext4"
        unlink(image)
        defer { unlink(image) }
        let options = Ext4Writer.Options(
            uuid: UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)),
            sourceDateEpoch: 1_700_000_000)
        guard let writer = try? Ext4Writer(path: image, size: 16 << 20, options: options) else { return }
        do {
            try writer.addArchive(reader, limit: entryLimit)
            _ = try writer.finish()
        } catch {
            // A refused archive is the right answer; only a crash is a finding.
        }
    }
}
