import Foundation
import KilnArchive

/// The OVA, GCE and Vagrant containers: members streamed through KilnArchive's libarchive owner,
/// with DiskImage's errors.
final class ExportArchive {
    enum Format { case ustar, gnutar }

    private let writer: KilnArchive.ArchiveWriter
    private let path: String
    /// Every member's modification time: a fixed one (SOURCE_DATE_EPOCH) keeps packages reproducible.
    private let mtime: Int64

    /// - Parameter timestamp: the members' modification time, as a Unix time; nil is now.
    init(path: String, displayName: String, format: Format, gzip: Bool, timestamp: UInt64?) throws(DiskImageError) {
        self.path = displayName
        mtime = timestamp.map { Int64(clamping: $0) } ?? Int64(Date().timeIntervalSince1970)
        do {
            writer = try KilnArchive.ArchiveWriter(
                path: path, format: format == .ustar ? .ustar : .gnuTar, compression: gzip ? .gzip : .none)
        } catch {
            throw DiskImageError(.io, "cannot write \(displayName): \(error.message)")
        }
    }

    private func mapping(_ body: () throws(ArchiveError) -> Void) throws(DiskImageError) {
        do {
            try body()
        } catch {
            throw DiskImageError(.io, "cannot write \(path): \(error.message)")
        }
    }

    private func header(_ name: String, size: UInt64) throws(DiskImageError) {
        let entry = ArchiveEntry(
            path: name, kind: .file, permissions: 0o644, userName: "root", groupName: "root",
            modificationTime: mtime, size: Int64(size))
        try mapping { () throws(ArchiveError) in try writer.add(entry) }
    }

    /// Adds a member with `content`.
    func add(_ name: String, content: [UInt8]) throws(DiskImageError) {
        try header(name, size: UInt64(content.count))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(content.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: content)
        try mapping { () throws(ArchiveError) in
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[0..<content.count]))
        }
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
            try mapping { () throws(ArchiveError) in try writer.write(UnsafeRawBufferPointer(part)) }
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
        try mapping { () throws(ArchiveError) in try writer.finish() }
    }
}
