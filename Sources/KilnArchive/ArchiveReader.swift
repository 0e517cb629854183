import CKilnArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one libarchive read handle, over a file or over bytes it keeps, and frees both in `deinit`.
package final class ArchiveReader {
    package enum Format: Sendable {
        /// A single compressed stream (`Packages.xz`): one entry holding the decompressed bytes.
        case raw
        /// The `ar` container of a `.deb`.
        case ar
        /// Any archive format libarchive knows (tar, cpio, ar, ...), under any filter.
        case any
    }

    private let handle: OpaquePointer
    private var memory: UnsafeMutableRawBufferPointer?
    /// The reader whose current entry this one reads (see `init(member:name:format:)`).
    private var outer: ArchiveReader?
    /// The size the current entry's header states, if any: what `readData()` reserves.
    private var currentSize: Int64?
    /// Names the archive in errors.
    package let name: String

    /// Opens the file at `path`.
    package convenience init(path: String, format: Format = .any) throws(ArchiveError) {
        try self.init(name: path, format: format) { archive_read_open_filename($0, path, 1 << 16) }
    }

    /// Reads the archive that starts at `descriptor`'s current offset (a region of a disk, say) up to
    /// its end-of-archive marker; the descriptor stays the caller's to close.
    package convenience init(descriptor: Int32, name: String, format: Format = .any) throws(ArchiveError) {
        try self.init(name: name, format: format) { archive_read_open_fd($0, descriptor, 1 << 20) }
    }

    /// Opens an archive held in `bytes`, copied so that the caller's buffer need not outlive it.
    package convenience init(bytes: some Collection<UInt8>, name: String, format: Format = .any) throws(ArchiveError) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        _ = copy.initializeMemory(as: UInt8.self, from: bytes)
        do {
            try self.init(name: name, format: format) { archive_read_open_memory($0, copy.baseAddress, bytes.count) }
        } catch {
            copy.deallocate()
            throw error
        }
        memory = copy
    }

    /// Reads the current entry of `outer` (an `ar` member of a `.deb`, say) as an archive of its
    /// own, pulling its bytes from `outer` as they are needed: the member is never whole in memory.
    /// `outer` must not be moved on while this reader is in use.
    package convenience init(member outer: ArchiveReader, name: String, format: Format = .any) throws(ArchiveError) {
        let context = Unmanaged.passUnretained(outer).toOpaque()
        try self.init(name: name, format: format) { handle in
            archive_read_open(
                handle, context, nil,
                { _, context, buffer in
                    // libarchive hands out the outer entry's bytes in its own blocks, which stay valid
                    // until the next read on the outer handle: exactly what a read callback may return.
                    guard let context, let buffer else { return -1 }
                    let outer = Unmanaged<ArchiveReader>.fromOpaque(context).takeUnretainedValue()
                    var size = 0
                    var offset: la_int64_t = 0
                    let rc = archive_read_data_block(outer.handle, buffer, &size, &offset)
                    if rc == ARCHIVE_EOF { return 0 }
                    return rc < ARCHIVE_WARN ? -1 : size
                }, nil)
        }
        self.outer = outer
    }

    private init(name: String, format: Format, open: (OpaquePointer) -> Int32) throws(ArchiveError) {
        guard let handle = archive_read_new() else { throw ArchiveError(name, "cannot allocate a reader") }
        self.handle = handle
        self.name = name
        switch format {
        case .raw:
            archive_read_support_filter_all(handle)
            archive_read_support_format_raw(handle)
        case .ar:
            archive_read_support_format_ar(handle)
        case .any:
            archive_read_support_filter_all(handle)
            archive_read_support_format_all(handle)
            archive_read_support_format_ar(handle)
        }
        // On failure, deinit frees the handle.
        if open(handle) < ARCHIVE_WARN { throw failure("cannot open") }
    }

    deinit {
        archive_read_free(handle)
        memory?.deallocate()
    }

    /// The next entry's header, or nil at the end of the archive.
    package func next() throws(ArchiveError) -> ArchiveEntry? {
        var entry: OpaquePointer?
        let rc = archive_read_next_header(handle, &entry)
        if rc == ARCHIVE_EOF { return nil }
        if rc < ARCHIVE_WARN { throw failure("cannot read an entry header") }
        guard let entry else { throw ArchiveError(name, "an entry without a header") }
        currentSize = archive_entry_size_is_set(entry) != 0 ? Int64(archive_entry_size(entry)) : nil
        return Self.header(of: entry)
    }

    /// Every entry of the archive at `path` with its data (empty for all but files), in order: for
    /// small archives, which are read whole.
    package static func entries(of path: String) throws(ArchiveError) -> [(ArchiveEntry, [UInt8])] {
        let reader = try ArchiveReader(path: path)
        var entries: [(ArchiveEntry, [UInt8])] = []
        while let entry = try reader.next() {
            entries.append((entry, entry.kind == .file ? try reader.readData() : []))
        }
        return entries
    }

    /// The current entry's contents, whole.
    package func readData() throws(ArchiveError) -> [UInt8] {
        var result: [UInt8] = []
        // Sized from the header when it states a size: growing by doubling could hold twice the file.
        if let size = currentSize, size > 0, size < Int64(Int32.max) { result.reserveCapacity(Int(size)) }
        try readData { result.append(contentsOf: $0) }
        return result
    }

    /// The current entry's contents in chunks of up to 1 MiB, never whole in memory.
    package func readData(_ chunk: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void) throws(ArchiveError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
            if count == 0 { return }
            if count < 0 { throw failure("cannot read data") }
            try chunk(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// The current entry's data blocks with the offset in the file where each starts, as libarchive
    /// hands them out: a sparse entry (GNU or pax sparse) leaves gaps, which are holes.
    package func readDataBlocks(
        _ block: (Int64, UnsafeRawBufferPointer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        while true {
            var buffer: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let rc = archive_read_data_block(handle, &buffer, &size, &offset)
            if rc == ARCHIVE_EOF { return }
            if rc < ARCHIVE_WARN { throw failure("cannot read data") }
            guard size > 0, let buffer else { continue }
            try block(Int64(offset), UnsafeRawBufferPointer(start: buffer, count: size))
        }
    }

    /// Skips the current entry's contents.
    package func skipData() throws(ArchiveError) {
        if archive_read_data_skip(handle) < ARCHIVE_WARN { throw failure("cannot skip data") }
    }

    private static func header(of entry: OpaquePointer) -> ArchiveEntry {
        let path = ArchiveEntry.normalize(archive_entry_pathname(entry).map { String(cString: $0) } ?? "")
        let mode = UInt32(archive_entry_mode(entry))
        let kind: ArchiveEntry.Kind
        if let link = archive_entry_hardlink(entry) {
            kind = .hardlink(target: ArchiveEntry.normalize(String(cString: link)))
        } else {
            switch mode & FileType.mask {
            case FileType.directory: kind = .directory
            case FileType.symlink:
                kind = .symlink(target: archive_entry_symlink(entry).map { String(cString: $0) } ?? "")
            case FileType.characterDevice:
                kind = .characterDevice(
                    major: UInt32(archive_entry_rdevmajor(entry)), minor: UInt32(archive_entry_rdevminor(entry)))
            case FileType.blockDevice:
                kind = .blockDevice(
                    major: UInt32(archive_entry_rdevmajor(entry)), minor: UInt32(archive_entry_rdevminor(entry)))
            case FileType.fifo: kind = .fifo
            default: kind = .file
            }
        }
        var attributes: [ArchiveEntry.ExtendedAttribute] = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK, let name {
                let attribute = ArchiveEntry.ExtendedAttribute(
                    name: String(cString: name),
                    value: value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? [])
                // libarchive's pax writer records each attribute twice (SCHILY.xattr and
                // LIBARCHIVE.xattr), and its reader hands both back: one of each name is kept.
                if let index = attributes.firstIndex(where: { $0.name == attribute.name }) {
                    attributes[index] = attribute
                } else {
                    attributes.append(attribute)
                }
            }
        }
        return ArchiveEntry(
            path: path, kind: kind, permissions: mode & 0o7777, uid: archive_entry_uid(entry),
            gid: archive_entry_gid(entry), userName: archive_entry_uname(entry).map { String(cString: $0) },
            groupName: archive_entry_gname(entry).map { String(cString: $0) },
            modificationTime: Int64(archive_entry_mtime(entry)), size: archive_entry_size(entry),
            extendedAttributes: attributes)
    }

    private func failure(_ action: String) -> ArchiveError {
        ArchiveError(name, action, handle: handle)
    }
}
