import CKilnArchive
import Foundation

/// One libarchive read handle: a compressed stream (raw format), an `ar` container or a tar
/// archive, from memory or a file. It owns the handle and the bytes it reads from, and frees both.
final class ArchiveReader {
    enum Format {
        /// A single compressed stream (`Packages.xz`): one entry, the decompressed bytes.
        case raw
        /// The `ar` container of a `.deb`.
        case ar
        /// A tar archive, compressed with any filter libarchive knows (xz, zstd, gzip, bzip2).
        case tar
    }

    /// The `S_IFMT` bits of a regular file and a directory (POSIX tar's values).
    static let regularFile: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symbolicLink: UInt32 = 0o120000

    /// What `nextEntry` found.
    struct Entry {
        var path: String
        var size: Int64
        /// The `S_IF*` type bits.
        var fileType: UInt32
        /// The permission bits, including setuid, setgid and sticky.
        var permissions: UInt32
        var uid: Int64
        var gid: Int64
        var modificationTime: Int64
        var symlinkTarget: String? = nil
        var hardlinkTarget: String? = nil
    }

    private let handle: OpaquePointer
    private let origin: String
    private var memory: UnsafeMutableRawBufferPointer?

    /// Opens `bytes` (copied, so the caller's buffer need not outlive the reader).
    convenience init(bytes: some Collection<UInt8>, format: Format, origin: String) throws(PackagesError) {
        let array = Array(bytes)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 16)
        array.withUnsafeBytes { source in copy.copyMemory(from: source) }
        try self.init(format: format, origin: origin, memory: copy) { handle in
            archive_read_open_memory(handle, copy.baseAddress, array.count)
        }
    }

    /// Opens the file at `path`.
    convenience init(path: String, format: Format) throws(PackagesError) {
        try self.init(format: format, origin: path) { handle in
            archive_read_open_filename(handle, path, 1 << 16)
        }
    }

    /// - Parameter memory: the bytes `open` reads, owned (and freed) by the reader from here on.
    private init(
        format: Format, origin: String, memory: UnsafeMutableRawBufferPointer? = nil, open: (OpaquePointer) -> Int32
    ) throws(PackagesError) {
        guard let handle = archive_read_new() else {
            memory?.deallocate()
            throw PackagesError(.archive, "\(origin): out of memory")
        }
        self.handle = handle
        self.origin = origin
        // Set before anything can fail, so that deinit frees it.
        self.memory = memory
        switch format {
        case .raw:
            archive_read_support_filter_all(handle)
            archive_read_support_format_raw(handle)
        case .ar:
            archive_read_support_format_ar(handle)
        case .tar:
            archive_read_support_filter_all(handle)
            archive_read_support_format_tar(handle)
            archive_read_support_format_gnutar(handle)
        }
        try check(open(handle), "cannot open")
    }

    deinit {
        archive_read_free(handle)
        memory?.deallocate()
    }

    /// The next entry's header, or `nil` at the end.
    func nextEntry() throws(PackagesError) -> Entry? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        try check(status, "cannot read an entry header")
        guard let entry else { return nil }
        return Entry(
            path: archive_entry_pathname(entry).map { String(cString: $0) } ?? "",
            size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : -1,
            fileType: UInt32(archive_entry_filetype(entry)),
            permissions: UInt32(archive_entry_perm(entry)),
            uid: archive_entry_uid(entry),
            gid: archive_entry_gid(entry),
            modificationTime: Int64(archive_entry_mtime(entry)),
            symlinkTarget: archive_entry_symlink(entry).map { String(cString: $0) },
            hardlinkTarget: archive_entry_hardlink(entry).map { String(cString: $0) })
    }

    /// The current entry's data, in chunks of up to 1 MiB handed to `body`.
    func readData(_ body: (UnsafeRawBufferPointer) throws(PackagesError) -> Void) throws(PackagesError) {
        let size = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = archive_read_data(handle, buffer.baseAddress, size)
            if count == 0 { return }
            if count < 0 { try check(Int32(count), "cannot read data") }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// The current entry's data as bytes.
    func readAll() throws(PackagesError) -> [UInt8] {
        var bytes: [UInt8] = []
        try readData { chunk in bytes.append(contentsOf: chunk) }
        return bytes
    }

    private func check(_ status: Int32, _ what: String) throws(PackagesError) {
        guard status < ARCHIVE_WARN else { return }
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "libarchive status \(status)"
        throw PackagesError(.archive, "\(origin): \(what)", cause: reason)
    }
}

extension ArchiveReader {
    /// Decompresses a single xz (or gzip, zstd, bzip2) stream.
    static func decompress(_ bytes: some Collection<UInt8>, origin: String) throws(PackagesError) -> [UInt8] {
        let reader = try ArchiveReader(bytes: bytes, format: .raw, origin: origin)
        guard try reader.nextEntry() != nil else { return [] }
        return try reader.readAll()
    }
}
