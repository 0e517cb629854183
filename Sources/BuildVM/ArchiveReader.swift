import CKilnArchive

/// What an archive entry is, as far as kiln cares.
enum ArchiveEntryKind: Sendable, Equatable {
    case file
    case directory
    case symlink(target: String)
    /// A hard link to an earlier entry, named by its path in the archive.
    case hardlink(target: String)
    /// Devices, fifos, sockets: never needed in a builder guest.
    case other
}

/// One entry's header.
struct ArchiveEntryHeader: Sendable {
    /// The path as stored, with any leading "./" or "/" removed ("usr/bin/env"; "" for the root).
    var path: String
    var kind: ArchiveEntryKind
    /// Permission bits (including setuid/setgid/sticky).
    var permissions: UInt32
    var size: Int64
}

/// Owns one libarchive read handle, over a file or over bytes kept alive by this object, and
/// frees it in `deinit`. Every format and filter libarchive knows is enabled: `.deb` files are
/// `ar`, their members tar with xz, zstd or gzip.
final class ArchiveReader {
    private let handle: OpaquePointer
    private var buffer: UnsafeMutableRawBufferPointer?
    /// Names the archive in errors ("linux-image.deb", "linux-image.deb:data.tar.xz").
    let name: String

    /// Opens the archive file at `path`.
    init(path: String) throws(BuildVMError) {
        name = path
        guard let handle = archive_read_new() else {
            throw BuildVMError(.archive, "cannot allocate a reader for \(path)")
        }
        self.handle = handle
        archive_read_support_filter_all(handle)
        archive_read_support_format_all(handle)
        archive_read_support_format_ar(handle)
        try check(archive_read_open_filename(handle, path, 1 << 16), "open")
    }

    /// Opens an archive held in `bytes` (an `ar` member, say); the bytes are copied and owned here.
    init(bytes: [UInt8], name: String) throws(BuildVMError) {
        self.name = name
        guard let handle = archive_read_new() else {
            throw BuildVMError(.archive, "cannot allocate a reader for \(name)")
        }
        self.handle = handle
        archive_read_support_filter_all(handle)
        archive_read_support_format_all(handle)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        copy.copyBytes(from: bytes)
        buffer = copy
        try check(archive_read_open_memory(handle, copy.baseAddress, bytes.count), "open")
    }

    deinit {
        archive_read_free(handle)
        buffer?.deallocate()
    }

    /// The next entry's header, or nil at the end of the archive.
    func next() throws(BuildVMError) -> ArchiveEntryHeader? {
        var entry: OpaquePointer?
        let rc = archive_read_next_header(handle, &entry)
        if rc == ARCHIVE_EOF { return nil }
        if rc < ARCHIVE_WARN { throw failure("read a header") }
        guard let entry else { throw BuildVMError(.archive, "\(name): entry without a header") }
        return Self.header(of: entry)
    }

    /// The current entry's contents.
    func readData() throws(BuildVMError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { archive_read_data(handle, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 { throw failure("read data") }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// Skips the current entry's contents without decompressing more than needed.
    func skipData() throws(BuildVMError) {
        if archive_read_data_skip(handle) < ARCHIVE_WARN { throw failure("skip data") }
    }

    private static func header(of entry: OpaquePointer) -> ArchiveEntryHeader {
        let rawPath = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let mode = UInt32(archive_entry_mode(entry))
        let kind: ArchiveEntryKind
        if let link = archive_entry_hardlink(entry) {
            kind = .hardlink(target: normalize(String(cString: link)))
        } else {
            switch mode & FileMode.typeMask {
            case FileMode.regular: kind = .file
            case FileMode.directory: kind = .directory
            case FileMode.symlink:
                kind = .symlink(target: archive_entry_symlink(entry).map { String(cString: $0) } ?? "")
            default: kind = .other
            }
        }
        return ArchiveEntryHeader(
            path: normalize(rawPath), kind: kind, permissions: mode & 0o7777, size: archive_entry_size(entry))
    }

    /// "./usr/bin/" and "/usr/bin" both become "usr/bin".
    static func normalize(_ path: String) -> String {
        var text = Substring(path)
        while text.hasPrefix("./") { text = text.dropFirst(2) }
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        return text == "." ? "" : String(text)
    }

    private func check(_ rc: Int32, _ action: String) throws(BuildVMError) {
        if rc < ARCHIVE_WARN { throw failure(action) }
    }

    private func failure(_ action: String) -> BuildVMError {
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "error \(archive_errno(handle))"
        return BuildVMError(.archive, "\(name): cannot \(action): \(reason)")
    }
}

/// The `st_mode` type bits (POSIX), spelled out because libarchive's `AE_IF*` macros are casts that
/// Swift does not import.
enum FileMode {
    static let typeMask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let characterDevice: UInt32 = 0o020000
}
