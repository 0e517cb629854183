import KilnArchive

/// A newc ("070701") cpio archive, the format the Linux kernel unpacks as an initramfs, written
/// through KilnArchive's libarchive owner.
///
/// Output is deterministic for the same calls in the same order: every entry gets uid and gid 0,
/// the same modification time, inode numbers counted from 1 in order, and no device numbers.
/// Callers add entries sorted by path (parents before children).
final class CpioWriter {
    /// Compression of the whole stream; the kernel also needs the matching `CONFIG_RD_*` option.
    enum Compression: String, Sendable, CaseIterable {
        case none, gzip, zstd
    }

    private let writer: ArchiveWriter
    private let modificationTime: Int64

    /// - Parameters:
    ///   - path: the file to write (callers write to a temporary name and rename it).
    ///   - modificationTime: seconds since the epoch stamped on every entry (SOURCE_DATE_EPOCH).
    init(path: String, compression: Compression, modificationTime: Int) throws(BuildVMError) {
        self.modificationTime = Int64(modificationTime)
        let filter: ArchiveWriter.Compression =
            switch compression {
            case .none: .none
            case .gzip: .gzip
            case .zstd: .zstd
            }
        writer = try Self.mapping { () throws(ArchiveError) in
            try ArchiveWriter(path: path, format: .cpioNewc, compression: filter)
        }
    }

    func addDirectory(_ path: String, permissions: UInt32 = 0o755) throws(BuildVMError) {
        try add(ArchiveEntry(path: path, kind: .directory, permissions: permissions))
    }

    func addFile(_ path: String, permissions: UInt32, contents: [UInt8]) throws(BuildVMError) {
        let entry = entry(path, .file, permissions)
        try Self.mapping { () throws(ArchiveError) in try writer.addFile(entry, contents: contents) }
    }

    /// Adds a regular file whose bytes are read from `hostPath` in chunks, never whole in memory.
    func addFile(_ path: String, permissions: UInt32, streamingFrom hostPath: String) throws(BuildVMError) {
        let entry = entry(path, .file, permissions)
        try Self.mapping { () throws(ArchiveError) in try writer.addFile(entry, streamingFrom: hostPath) }
    }

    func addSymlink(_ path: String, target: String) throws(BuildVMError) {
        try add(entry(path, .symlink(target: target), 0o777))
    }

    func addCharacterDevice(_ path: String, major: UInt32, minor: UInt32, permissions: UInt32) throws(BuildVMError) {
        try add(entry(path, .characterDevice(major: major, minor: minor), permissions))
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
        try Self.mapping { () throws(ArchiveError) in try writer.finish() }
    }

    private func entry(_ path: String, _ kind: ArchiveEntry.Kind, _ permissions: UInt32) -> ArchiveEntry {
        ArchiveEntry(path: path, kind: kind, permissions: permissions, modificationTime: modificationTime)
    }

    private func add(_ entry: ArchiveEntry) throws(BuildVMError) {
        var entry = entry
        entry.modificationTime = modificationTime
        let stamped = entry
        try Self.mapping { () throws(ArchiveError) in try writer.add(stamped) }
    }

    private static func mapping<T>(_ body: () throws(ArchiveError) -> T) throws(BuildVMError) -> T {
        do {
            return try body()
        } catch {
            throw BuildVMError(.archive, error.description)
        }
    }
}
