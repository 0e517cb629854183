import Ext4
import KilnArchive

/// A tar (or cpio) entry's data blocks as libarchive hands them out, with their offsets: a sparse
/// entry's gaps become holes in the ext4 file.
package struct ArchiveContents: Ext4Contents {
    let reader: ArchiveReader

    package init(reader: ArchiveReader) { self.reader = reader }

    package mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        var failure: (any Error)?
        do {
            try reader.readDataBlocks { (offset, block) throws(ArchiveError) in
                do {
                    try body(offset, block)
                } catch {
                    failure = error
                    throw ArchiveError(reader.name, "stopped by the writer")
                }
            }
        } catch {
            throw failure ?? error
        }
    }
}

extension Ext4Entry {
    /// The ext4 entry for an archive's header: kind, permission bits, owner, time and extended
    /// attributes (file capabilities, ACLs) as the archive records them.
    package init(_ header: ArchiveEntry) {
        let kind: Ext4Entry.Kind
        switch header.kind {
        case .file: kind = .regularFile(size: header.size)
        case .directory: kind = .directory
        case .symlink(let target): kind = .symlink(target: target)
        case .hardlink(let target): kind = .hardLink(target: target)
        case .characterDevice(let major, let minor): kind = .characterDevice(major: major, minor: minor)
        case .blockDevice(let major, let minor): kind = .blockDevice(major: major, minor: minor)
        case .fifo: kind = .fifo
        }
        self.init(
            path: header.path, kind: kind, permissions: UInt16(header.permissions & 0o7777),
            uid: UInt32(truncatingIfNeeded: header.uid), gid: UInt32(truncatingIfNeeded: header.gid),
            modificationTime: header.modificationTime,
            extendedAttributes: header.extendedAttributes.map { Ext4ExtendedAttribute(name: $0.name, value: $0.value) })
    }
}

extension Ext4Writer {
    /// Adds every entry of `reader` (a tar or cpio stream, any compression libarchive reads), regular
    /// files with their data streamed block by block. At most `limit` entries when given.
    ///
    /// - Throws: the archive's error (a damaged or truncated stream, a header that lies about its
    ///   size) or the writer's (a bad path, a full file system); what was added stays added.
    package func addArchive(_ reader: ArchiveReader, limit: Int = .max) throws {
        var count = 0
        while count < limit, let header = try reader.next() {
            count += 1
            if case .file = header.kind {
                var contents = ArchiveContents(reader: reader)
                try add(Ext4Entry(header), contents: &contents)
            } else {
                try add(Ext4Entry(header))
            }
        }
    }
}
