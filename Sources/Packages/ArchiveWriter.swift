import CKilnArchive
import Foundation

/// One libarchive write handle producing an uncompressed GNU tar file (the format of `.deb` data
/// parts; GNU and busybox tar read it, and long names need no pax headers). It owns
/// the handle and frees it; every libarchive status becomes a `PackagesError` here.
final class ArchiveWriter {
    private let handle: OpaquePointer
    private let path: String
    private var closed = false

    init(path: String) throws(PackagesError) {
        guard let handle = archive_write_new() else { throw PackagesError(.archive, "\(path): out of memory") }
        self.handle = handle
        self.path = path
        try check(archive_write_set_format_gnutar(handle), "cannot set the tar format")
        // No padding of the last block beyond tar's own: the file is read by tar, not written to tape.
        try check(archive_write_set_bytes_in_last_block(handle, 1), "cannot set the block size")
        try check(archive_write_open_filename(handle, path), "cannot open")
    }

    deinit {
        if !closed { archive_write_close(handle) }
        archive_write_free(handle)
    }

    /// Writes one entry's header; a regular file's data follows through `write(_:)`.
    func header(_ entry: ArchiveReader.Entry) throws(PackagesError) {
        guard let raw = archive_entry_new() else { throw PackagesError(.archive, "\(path): out of memory") }
        defer { archive_entry_free(raw) }
        archive_entry_set_pathname(raw, entry.path)
        archive_entry_set_filetype(raw, entry.fileType)
        archive_entry_set_perm(raw, mode_t(entry.permissions))
        archive_entry_set_uid(raw, entry.uid)
        archive_entry_set_gid(raw, entry.gid)
        archive_entry_set_mtime(raw, time_t(entry.modificationTime), 0)
        if let target = entry.symlinkTarget { archive_entry_set_symlink(raw, target) }
        if let target = entry.hardlinkTarget {
            archive_entry_set_hardlink(raw, target)
            archive_entry_set_size(raw, 0)
        } else {
            archive_entry_set_size(raw, entry.fileType == ArchiveReader.regularFile ? max(0, entry.size) : 0)
        }
        try check(archive_write_header(handle, raw), "cannot write the header of \(entry.path)")
    }

    /// Writes data of the current entry.
    func write(_ bytes: UnsafeRawBufferPointer) throws(PackagesError) {
        guard bytes.count > 0 else { return }
        let written = archive_write_data(handle, bytes.baseAddress, bytes.count)
        if written < 0 { try check(Int32(written), "cannot write data") }
    }

    /// A whole regular file from memory.
    func file(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644, mtime: Int64) throws(PackagesError) {
        try header(
            ArchiveReader.Entry(
                path: path, size: Int64(bytes.count), fileType: ArchiveReader.regularFile, permissions: mode, uid: 0,
                gid: 0,
                modificationTime: mtime))
        var failure: PackagesError?
        bytes.withUnsafeBytes { buffer in
            do throws(PackagesError) {
                try write(buffer)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }

    /// A symbolic link.
    func symlink(_ path: String, to target: String, mtime: Int64) throws(PackagesError) {
        try header(
            ArchiveReader.Entry(
                path: path, size: 0, fileType: ArchiveReader.symbolicLink, permissions: 0o777, uid: 0, gid: 0,
                modificationTime: mtime, symlinkTarget: target))
    }

    /// A directory.
    func directory(_ path: String, mtime: Int64) throws(PackagesError) {
        try header(
            ArchiveReader.Entry(
                path: path, size: 0, fileType: ArchiveReader.directory, permissions: 0o755, uid: 0, gid: 0,
                modificationTime: mtime))
    }

    func close() throws(PackagesError) {
        closed = true
        try check(archive_write_close(handle), "cannot finish")
    }

    private func check(_ status: Int32, _ what: String) throws(PackagesError) {
        guard status < ARCHIVE_WARN else { return }
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "libarchive status \(status)"
        throw PackagesError(.archive, "\(path): \(what)", cause: reason)
    }
}
