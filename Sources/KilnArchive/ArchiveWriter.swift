import CKilnArchive
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one libarchive write handle and frees it in `deinit`.
///
/// Output is deterministic for the same calls in the same order: inode numbers count from 1, device
/// numbers are zero, and every time is the one the caller gives.
package final class ArchiveWriter {
    package enum Format: Sendable {
        /// newc ("070701") cpio, what the kernel unpacks as an initramfs.
        case cpioNewc
        /// POSIX pax tar without pax headers unless a field needs one (long names, large ids).
        case paxRestricted
        /// GNU tar, which GCE requires for its disk.raw archive.
        case gnuTar
        /// POSIX ustar: the OVA container's format.
        case ustar
    }

    package enum Compression: String, Sendable, CaseIterable {
        case none, gzip, xz, zstd
    }

    private let handle: OpaquePointer
    package let name: String
    private var nextInode: Int64 = 1
    private var closed = false
    private var opened = false

    /// Opens `path` for writing (callers write to a temporary name and rename when done).
    package init(path: String, format: Format, compression: Compression = .none) throws(ArchiveError) {
        name = path
        guard let handle = archive_write_new() else { throw ArchiveError(path, "cannot allocate a writer") }
        self.handle = handle
        // On failure, deinit frees the handle.
        try configure(format: format, compression: compression)
        try check(archive_write_open_filename(handle, path), "cannot open")
        opened = true
    }

    deinit {
        if !closed && opened { archive_write_close(handle) }
        archive_write_free(handle)
    }

    private func configure(format: Format, compression: Compression) throws(ArchiveError) {
        switch format {
        case .cpioNewc:
            try check(archive_write_set_format_cpio_newc(handle), "cannot choose newc cpio")
            // The kernel reads the stream whole; padding a last block only wastes bytes.
            try check(archive_write_set_bytes_in_last_block(handle, 1), "cannot set the last block size")
        case .paxRestricted:
            try check(archive_write_set_format_pax_restricted(handle), "cannot choose pax tar")
        case .gnuTar:
            try check(archive_write_set_format_gnutar(handle), "cannot choose GNU tar")
        case .ustar:
            try check(archive_write_set_format_ustar(handle), "cannot choose ustar")
        }
        switch compression {
        case .none:
            try check(archive_write_add_filter_none(handle), "cannot choose no compression")
        case .gzip:
            try check(archive_write_add_filter_gzip(handle), "cannot choose gzip")
            // gzip's header carries a time of its own: leave it out so that output is reproducible.
            try check(archive_write_set_filter_option(handle, "gzip", "timestamp", nil), "cannot drop the gzip time")
        case .xz:
            try check(archive_write_add_filter_xz(handle), "cannot choose xz")
        case .zstd:
            try check(archive_write_add_filter_zstd(handle), "cannot choose zstd")
        }
    }

    /// Writes a header. For a `.file` entry, `entry.size` bytes must follow through `write`.
    package func add(_ entry: ArchiveEntry) throws(ArchiveError) {
        guard let raw = archive_entry_new() else { throw ArchiveError(name, "cannot allocate an entry") }
        defer { archive_entry_free(raw) }
        archive_entry_set_pathname(raw, entry.path.isEmpty ? "." : entry.path)
        archive_entry_set_perm(raw, mode_t(entry.permissions))
        archive_entry_set_uid(raw, entry.uid)
        archive_entry_set_gid(raw, entry.gid)
        if let user = entry.userName { archive_entry_set_uname(raw, user) }
        if let group = entry.groupName { archive_entry_set_gname(raw, group) }
        archive_entry_set_mtime(raw, time_t(entry.modificationTime), 0)
        archive_entry_set_ino64(raw, nextInode)
        archive_entry_set_dev(raw, 0)
        archive_entry_set_nlink(raw, 1)
        // cpio wants a size on every header; only files (set below) have one other than zero.
        archive_entry_set_size(raw, 0)
        nextInode += 1
        switch entry.kind {
        case .file:
            archive_entry_set_filetype(raw, FileType.regular)
            archive_entry_set_size(raw, entry.size)
            archive_entry_set_nlink(raw, 1)
        case .directory:
            archive_entry_set_filetype(raw, FileType.directory)
            archive_entry_set_nlink(raw, 2)
        case .symlink(let target):
            archive_entry_set_filetype(raw, FileType.symlink)
            archive_entry_set_symlink(raw, target)
        case .hardlink(let target):
            archive_entry_set_filetype(raw, FileType.regular)
            archive_entry_set_hardlink(raw, target)
            archive_entry_set_size(raw, 0)
        case .characterDevice(let major, let minor):
            archive_entry_set_filetype(raw, FileType.characterDevice)
            archive_entry_set_rdevmajor(raw, dev_t(major))
            archive_entry_set_rdevminor(raw, dev_t(minor))
        case .blockDevice(let major, let minor):
            archive_entry_set_filetype(raw, FileType.blockDevice)
            archive_entry_set_rdevmajor(raw, dev_t(major))
            archive_entry_set_rdevminor(raw, dev_t(minor))
        case .fifo:
            archive_entry_set_filetype(raw, FileType.fifo)
        }
        for attribute in entry.extendedAttributes {
            attribute.value.withUnsafeBytes {
                archive_entry_xattr_add_entry(raw, attribute.name, $0.baseAddress, $0.count)
            }
        }
        try check(archive_write_header(handle, raw), "cannot write the header of \(entry.path)")
    }

    /// Writes data of the current file entry.
    package func write(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = archive_write_data(handle, base + offset, bytes.count - offset)
            if written <= 0 { throw failure("cannot write data") }
            offset += written
        }
    }

    /// Adds a whole file entry with `contents`.
    package func addFile(_ entry: ArchiveEntry, contents: [UInt8]) throws(ArchiveError) {
        var entry = entry
        entry.kind = .file
        entry.size = Int64(contents.count)
        try add(entry)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(contents.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: contents)
        try write(UnsafeRawBufferPointer(rebasing: buffer[0..<contents.count]))
    }

    /// Adds a file entry whose bytes are streamed from `hostPath` in 1 MiB chunks.
    package func addFile(_ entry: ArchiveEntry, streamingFrom hostPath: String) throws(ArchiveError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(hostPath), .readOnly, options: .closeOnExec)
        } catch {
            throw ArchiveError(name, "cannot read \(hostPath): \(error)")
        }
        defer { try? fd.close() }
        let size: Int64
        do {
            size = try fd.stat().size
        } catch {
            throw ArchiveError(name, "cannot stat \(hostPath)")
        }
        var entry = entry
        entry.kind = .file
        entry.size = size
        try add(entry)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var remaining = size
        while remaining > 0 {
            let count: Int
            do {
                count = try fd.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, Int(remaining))]))
            } catch {
                throw ArchiveError(name, "cannot read \(hostPath): \(error)")
            }
            guard count > 0 else { throw ArchiveError(name, "\(hostPath) shrank while being read") }
            try write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            remaining -= Int64(count)
        }
    }

    /// Writes the trailer and closes the file.
    package func finish() throws(ArchiveError) {
        closed = true
        try check(archive_write_close(handle), "cannot finish")
    }

    private func check(_ rc: Int32, _ action: String) throws(ArchiveError) {
        if rc < ARCHIVE_WARN { throw failure(action) }
    }

    private func failure(_ action: String) -> ArchiveError {
        ArchiveError(name, action, handle: handle)
    }
}
