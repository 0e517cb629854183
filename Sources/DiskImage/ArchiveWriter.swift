import CKilnArchive
import Foundation

/// One libarchive writer handle; members are streamed in, the handle is freed in `deinit`.
final class ArchiveWriter {
    enum Format { case ustar, gnutar }

    private let handle: OpaquePointer
    private let path: String
    private var closed = false
    /// A fixed modification time (SOURCE_DATE_EPOCH when set) keeps packages reproducible.
    private let mtime: Int

    init(path: String, displayName: String, format: Format, gzip: Bool) throws(DiskImageError) {
        guard let handle = archive_write_new() else {
            throw DiskImageError(.io, "cannot start an archive for \(displayName)")
        }
        self.handle = handle
        self.path = displayName
        mtime =
            ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(Int.init)
            ?? Int(Date().timeIntervalSince1970)
        try check(format == .ustar ? archive_write_set_format_ustar(handle) : archive_write_set_format_gnutar(handle))
        if gzip {
            try check(archive_write_add_filter_gzip(handle))
            // No file name or time in the gzip header: the same input gives the same bytes.
            _ = archive_write_set_filter_option(handle, "gzip", "timestamp", nil)
        }
        // Write full 10 KiB blocks as tar readers expect, straight to the file.
        try check(archive_write_open_filename(handle, path))
    }

    deinit {
        if !closed { archive_write_close(handle) }
        archive_write_free(handle)
    }

    private func check(_ rc: Int32) throws(DiskImageError) {
        if rc < ARCHIVE_WARN {
            let message = archive_error_string(handle).map { String(cString: $0) } ?? "code \(rc)"
            throw DiskImageError(.io, "cannot write \(path): \(message)")
        }
    }

    private func header(_ name: String, size: UInt64) throws(DiskImageError) {
        let entry = archive_entry_new()
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_size(entry, la_int64_t(size))
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG, a macro Swift cannot see
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_mtime(entry, time_t(mtime), 0)
        archive_entry_set_uname(entry, "root")
        archive_entry_set_gname(entry, "root")
        try check(archive_write_header(handle, entry))
    }

    private func data(_ bytes: UnsafeRawBufferPointer) throws(DiskImageError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = archive_write_data(handle, base + done, bytes.count - done)
            if n < 0 { try check(Int32(n)) }
            if n <= 0 { throw DiskImageError(.io, "cannot write \(path)") }
            done += n
        }
    }

    /// Adds a member with `content`.
    func add(_ name: String, content: [UInt8]) throws(DiskImageError) {
        try header(name, size: UInt64(content.count))
        var failure: DiskImageError?
        content.withUnsafeBytes { raw in
            do throws(DiskImageError) { try data(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Adds a member of `size` bytes read through `fill`, one chunk at a time (memory stays bounded).
    func add(
        _ name: String, size: UInt64, fill: (UnsafeMutableRawBufferPointer, UInt64) throws(DiskImageError) -> Void,
        progress: (UInt64) -> Void = { _ in }
    ) throws(DiskImageError) {
        try header(name, size: size)
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(chunk), size - offset))
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try fill(part, offset)
            try data(UnsafeRawBufferPointer(part))
            offset += UInt64(n)
            progress(offset)
        }
    }

    /// Adds the file at `source` as `name`.
    func addFile(_ name: String, from source: String) throws(DiskImageError) {
        let file = try ImageFile(reading: source)
        try add(name, size: try file.size) { buffer, offset throws(DiskImageError) in
            try file.read(into: buffer, at: offset)
        }
    }

    func close() throws(DiskImageError) {
        closed = true
        try check(archive_write_close(handle))
    }
}
