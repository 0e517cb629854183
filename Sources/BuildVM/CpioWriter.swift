import CKilnArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one libarchive write handle producing a newc ("070701") cpio archive, the format the Linux
/// kernel unpacks as an initramfs, and frees it in `deinit`.
///
/// Output is deterministic for the same calls in the same order: every entry gets uid and gid 0,
/// the same modification time, inode numbers counted from 1 in order, and no device numbers.
/// Callers add entries sorted by path (parents before children).
final class CpioWriter {
    /// Compression of the whole stream; the kernel also needs the matching `CONFIG_RD_*` option.
    enum Compression: String, Sendable, CaseIterable {
        case none, gzip, zstd
    }

    private let handle: OpaquePointer
    private let path: String
    private let modificationTime: Int
    private var nextInode: Int64 = 1
    private var closed = false

    /// - Parameters:
    ///   - path: the file to write (callers write to a temporary name and rename it).
    ///   - modificationTime: seconds since the epoch stamped on every entry (SOURCE_DATE_EPOCH).
    init(path: String, compression: Compression, modificationTime: Int) throws(BuildVMError) {
        self.path = path
        self.modificationTime = modificationTime
        guard let handle = archive_write_new() else {
            throw BuildVMError(.archive, "cannot allocate a writer for \(path)")
        }
        self.handle = handle
        try check(archive_write_set_format_cpio_newc(handle), "set the newc format")
        switch compression {
        case .none:
            try check(archive_write_add_filter_none(handle), "set no compression")
        case .gzip:
            try check(archive_write_add_filter_gzip(handle), "set gzip")
            // gzip's header carries a time of its own; leave it zero so that output is reproducible.
            try check(archive_write_set_filter_option(handle, "gzip", "timestamp", nil), "drop the gzip timestamp")
        case .zstd:
            try check(archive_write_add_filter_zstd(handle), "set zstd")
        }
        // The kernel reads the stream whole; padding the last block only wastes bytes.
        try check(archive_write_set_bytes_in_last_block(handle, 1), "set the last block size")
        try check(archive_write_open_filename(handle, path), "open")
    }

    deinit {
        if !closed { archive_write_close(handle) }
        archive_write_free(handle)
    }

    func addDirectory(_ path: String, permissions: UInt32 = 0o755) throws(BuildVMError) {
        try writeHeader(path, type: FileMode.directory, permissions: permissions, size: 0, links: 2)
    }

    func addFile(_ path: String, permissions: UInt32, contents: [UInt8]) throws(BuildVMError) {
        try checkSize(Int64(contents.count), path)
        try writeHeader(path, type: FileMode.regular, permissions: permissions, size: Int64(contents.count), links: 1)
        var offset = 0
        while offset < contents.count {
            let written = contents.withUnsafeBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return -1 }
                return archive_write_data(handle, base + offset, bytes.count - offset)
            }
            if written <= 0 { throw failure("write \(path)") }
            offset += written
        }
    }

    /// Adds a regular file whose bytes are read from `hostPath` in chunks, never whole in memory.
    func addFile(_ path: String, permissions: UInt32, streamingFrom hostPath: String) throws(BuildVMError) {
        let fd = open(hostPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BuildVMError(.io, "cannot read \(hostPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw BuildVMError(.io, "cannot stat \(hostPath)") }
        try checkSize(Int64(info.st_size), hostPath)
        try writeHeader(path, type: FileMode.regular, permissions: permissions, size: Int64(info.st_size), links: 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var remaining = Int64(info.st_size)
        while remaining > 0 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw BuildVMError(.io, "\(hostPath): file shrank while being read") }
            let written = chunk.withUnsafeBytes { archive_write_data(handle, $0.baseAddress, count) }
            if written != count { throw failure("write \(path)") }
            remaining -= Int64(count)
        }
    }

    func addSymlink(_ path: String, target: String) throws(BuildVMError) {
        try writeHeader(path, type: FileMode.symlink, permissions: 0o777, size: 0, links: 1, symlink: target)
    }

    func addCharacterDevice(_ path: String, major: UInt32, minor: UInt32, permissions: UInt32) throws(BuildVMError) {
        try writeHeader(path, type: FileMode.characterDevice, permissions: permissions, size: 0, links: 1) {
            archive_entry_set_rdevmajor($0, dev_t(major))
            archive_entry_set_rdevminor($0, dev_t(minor))
        }
    }

    /// Writes every node of `tree`, sorted by path.
    func add(_ tree: FileTree) throws(BuildVMError) {
        for path in tree.sortedPaths {
            switch tree.node(at: path) {
            case .directory(let permissions)?:
                try addDirectory(path, permissions: permissions)
            case .file(let contents, let permissions)?:
                guard let contents else { throw BuildVMError(.assembly, "\(path): contents were not kept") }
                try addFile(path, permissions: permissions, contents: contents)
            case .symlink(let target)?:
                try addSymlink(path, target: target)
            case .characterDevice(let major, let minor, let permissions)?:
                try addCharacterDevice(path, major: major, minor: minor, permissions: permissions)
            case nil:
                continue
            }
        }
    }

    /// Writes the trailer and closes the file.
    func finish() throws(BuildVMError) {
        closed = true
        try check(archive_write_close(handle), "finish")
    }

    private func writeHeader(
        _ path: String, type: UInt32, permissions: UInt32, size: Int64, links: UInt32, symlink: String? = nil,
        extra: (OpaquePointer) -> Void = { _ in }
    ) throws(BuildVMError) {
        guard let entry = archive_entry_new() else {
            throw BuildVMError(.archive, "cannot allocate an entry for \(path)")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, path)
        archive_entry_set_filetype(entry, type)
        archive_entry_set_perm(entry, mode_t(permissions))
        archive_entry_set_size(entry, size)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        archive_entry_set_mtime(entry, modificationTime, 0)
        archive_entry_set_nlink(entry, links)
        archive_entry_set_ino64(entry, nextInode)
        archive_entry_set_dev(entry, 0)
        nextInode += 1
        if let symlink { archive_entry_set_symlink(entry, symlink) }
        extra(entry)
        try check(archive_write_header(handle, entry), "write the header of \(path)")
    }

    /// newc stores sizes in 8 hex digits: a file must be under 4 GiB.
    private func checkSize(_ size: Int64, _ name: String) throws(BuildVMError) {
        if size > Int64(UInt32.max) {
            throw BuildVMError(.archive, "\(name): \(size) bytes is more than a newc cpio entry holds (4 GiB)")
        }
    }

    private func check(_ rc: Int32, _ action: String) throws(BuildVMError) {
        if rc < ARCHIVE_WARN { throw failure(action) }
    }

    private func failure(_ action: String) -> BuildVMError {
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "error \(archive_errno(handle))"
        return BuildVMError(.archive, "\(path): cannot \(action): \(reason)")
    }
}
