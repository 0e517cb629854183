import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open file descriptor with positioned reads and writes; closed when the owner goes away.
final class ImageFile: @unchecked Sendable {
    // @unchecked: the descriptors are immutable, pread/pwrite are safe to call from several threads, and
    // the one mutable flag is an atomic.

    private let fd: FileDescriptor
    let path: String
    /// A second descriptor on an output, opened with O_DIRECT when asked (nil otherwise, or when the file
    /// system refuses it): bulk data then goes straight to the device instead of being copied into the
    /// page cache, for a third of the CPU time, but at the device's speed.
    private let directFD: FileDescriptor?
    /// A block device: its size comes from the device, not from stat.
    private var isBlockDevice = false
    /// Set once a direct write is refused (EINVAL: an alignment the device needs is larger than ours).
    private let directRefused = Atomic<Bool>(false)

    /// The alignment of memory, offset and length that direct writes use.
    static let directAlignment = 4096

    // O_DIRECT, which neither Glibc's Swift overlay nor swift-system exports.
    #if arch(x86_64) || arch(i386)
        private static let oDirect = FileDescriptor.OpenOptions(rawValue: 0o40000)
    #else
        // arm64, riscv64 and most others
        private static let oDirect = FileDescriptor.OpenOptions(rawValue: 0o200000)
    #endif

    // Linux lseek whences for sparse files (swift-system names them on Darwin and FreeBSD only).
    private static let seekData = FileDescriptor.SeekOrigin(rawValue: 3)
    private static let seekHole = FileDescriptor.SeekOrigin(rawValue: 4)

    /// Opens `path` read-only: a regular file, or a block device unless `regularOnly`.
    ///
    /// Anything else (a FIFO, a socket, a character device, a directory) is refused before a byte is
    /// read: reading a FIFO would wait for a writer for ever. The open itself does not block either
    /// (O_NONBLOCK, cleared once the file is known to be one kiln reads).
    ///
    /// - Parameter noFollow: refuse a symbolic link in the last component (a backing file must be the
    ///   file beside the image, not a link to somewhere else).
    init(reading path: String, regularOnly: Bool = false, noFollow: Bool = false) throws(DiskImageError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking, noFollow ? .noFollow : []])
        } catch Errno.tooManySymbolicLinkLevels where noFollow {
            throw DiskImageError(.io, "cannot open \(path): is a symbolic link")
        } catch {
            throw DiskImageError(.io, "cannot open \(path): \(error)")
        }
        let kind: FileType
        do {
            kind = try fd.stat().type
        } catch {
            try? fd.close()
            throw DiskImageError(.io, "cannot open \(path): \(error)")
        }
        if kind != .regular && (regularOnly || kind != .blockSpecial) {
            try? fd.close()
            let what: String
            switch kind {
            case .directory: what = "is a directory"
            case .fifo: what = "is a FIFO"
            case .socket: what = "is a socket"
            case .characterSpecial: what = "is a character device"
            case .blockSpecial: what = "is a block device"
            default: what = "is not a regular file"
            }
            throw DiskImageError(.io, "cannot open \(path): \(what)")
        }
        // swift-system has no fcntl.
        _ = fcntl(fd.rawValue, F_SETFL, fcntl(fd.rawValue, F_GETFL) & ~O_NONBLOCK)
        self.fd = fd
        self.path = path
        directFD = nil
        isBlockDevice = kind == .blockSpecial
    }

    /// Opens `path` for writing, emptying it (used on an `AtomicOutput`'s temporary file).
    ///
    /// No O_TRUNC: on ext4, truncating a file to zero (even an empty one, as O_TRUNC does on a file that
    /// already exists) marks it for "replace via truncate", and closing it then pushes every delayed
    /// block to the disk: half a second per GiB of output on a quiet machine, many seconds on a busy
    /// one. A fresh, empty file is left as it is; only one that holds bytes is truncated.
    ///
    /// - Parameter direct: also open it with O_DIRECT for `writeBulk`.
    init(writing path: String, displayName: String, direct: Bool = false) throws(DiskImageError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .readWrite, options: [.create, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644))
        } catch {
            throw DiskImageError(.io, "cannot write \(displayName): \(error)")
        }
        do {
            if try fd.stat().size > 0 { try fd.resize(to: 0) }
        } catch {
            try? fd.close()
            throw DiskImageError(.io, "cannot write \(displayName): \(error)")
        }
        self.fd = fd
        self.path = displayName
        let directOptions: FileDescriptor.OpenOptions = [.closeOnExec, ImageFile.oDirect]
        directFD = direct ? try? FileDescriptor.open(FilePath(path), .writeOnly, options: directOptions) : nil
    }

    deinit {
        try? fd.close()
        try? directFD?.close()
    }

    /// Whether `count` bytes at `offset` lie within what a file offset (off_t) can address.
    static func addressable(_ offset: UInt64, _ count: Int) -> Bool {
        offset <= UInt64(Int64.max) - UInt64(max(0, count))
    }

    var size: UInt64 {
        get throws(DiskImageError) {
            let status: Stat
            do {
                status = try fd.stat()
            } catch {
                throw DiskImageError(.io, "cannot stat \(path): \(error)")
            }
            if isBlockDevice {
                do {
                    return UInt64(try fd.seek(offset: 0, from: .end))
                } catch {
                    throw DiskImageError(.io, "cannot size \(path): \(error)")
                }
            }
            return UInt64(status.size)
        }
    }

    /// Bytes the file occupies on disk.
    var allocatedBytes: UInt64 {
        guard let status = try? fd.stat() else { return 0 }
        return UInt64(status.sizeAllocated)
    }

    /// Reads exactly `buffer.count` bytes at `offset`; a short file is a truncated image.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard buffer.baseAddress != nil else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            throw DiskImageError(
                .truncated, "\(path) is truncated: needs \(buffer.count) bytes at offset \(offset), file ends first")
        }
        var done = 0
        while done < buffer.count {
            let n = try readOnce(into: buffer, from: done, at: offset)
            if n == 0 {
                throw DiskImageError(
                    .truncated, "\(path) is truncated: needs \(buffer.count) bytes at offset \(offset), file ends first"
                )
            }
            done += n
        }
    }

    /// Reads `count` bytes at `offset` into a `Bytes`.
    func readBytes(_ count: Int, at offset: UInt64) throws(DiskImageError) -> Bytes {
        var bytes = Bytes(count: count)
        var failure: DiskImageError?
        bytes.storage.withUnsafeMutableBytes { raw in
            do throws(DiskImageError) { try read(into: raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads up to `buffer.count` bytes, zero-filling whatever lies past the end of the file.
    func readPadded(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard let base = buffer.baseAddress else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            // No file reaches that far: all of it lies past the end.
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        var done = 0
        while done < buffer.count {
            let n = try readOnce(into: buffer, from: done, at: offset)
            if n == 0 { break }
            done += n
        }
        if done < buffer.count {
            (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
        }
    }

    /// One pread (retried on EINTR) of `buffer[done...]` from `offset + done`; 0 at the end of the file.
    private func readOnce(into buffer: UnsafeMutableRawBufferPointer, from done: Int, at offset: UInt64)
        throws(DiskImageError) -> Int
    {
        do {
            return try fd.read(
                fromAbsoluteOffset: Int64(offset) + Int64(done),
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
        } catch {
            throw DiskImageError(.io, "cannot read \(path): \(error)")
        }
    }

    /// Reads up to `count` bytes at `offset`, zero-filled past the end of the file.
    func readPaddedBytes(_ count: Int, at offset: UInt64) throws(DiskImageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var failure: DiskImageError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(DiskImageError) { try readPadded(into: raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard buffer.baseAddress != nil else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            throw DiskImageError(.io, "cannot write \(path): offset \(offset) is past the largest file size")
        }
        var done = 0
        while done < buffer.count {
            do {
                done += try fd.write(
                    toAbsoluteOffset: Int64(offset) + Int64(done), UnsafeRawBufferPointer(rebasing: buffer[done...]))
            } catch {
                throw DiskImageError(.io, "cannot write \(path): \(error)")
            }
        }
    }

    /// Writes bulk data, bypassing the page cache where it can: the largest prefix whose memory, offset
    /// and length are multiples of `directAlignment` goes through O_DIRECT, the rest through the page
    /// cache (the kernel keeps the two coherent). Falls back to the page cache for good when the file
    /// system refuses a direct write.
    func writeBulk(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard let base = buffer.baseAddress else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            throw DiskImageError(.io, "cannot write \(path): offset \(offset) is past the largest file size")
        }
        let align = ImageFile.directAlignment
        var done = 0
        if let directFD, !directRefused.load(ordering: .relaxed), Int(bitPattern: base) % align == 0,
            offset % UInt64(align) == 0
        {
            let direct = buffer.count - buffer.count % align
            while done < direct {
                do {
                    done += try directFD.write(
                        toAbsoluteOffset: Int64(offset) + Int64(done),
                        UnsafeRawBufferPointer(rebasing: buffer[done..<direct]))
                } catch Errno.invalidArgument where done == 0 {
                    directRefused.store(true, ordering: .relaxed)
                    break
                } catch {
                    throw DiskImageError(.io, "cannot write \(path): \(error)")
                }
                // A short direct write leaves an unaligned remainder: the page cache takes it.
                if done % align != 0 { break }
            }
        }
        if done < buffer.count {
            try write(UnsafeRawBufferPointer(rebasing: buffer[done...]), at: offset + UInt64(done))
        }
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskImageError) {
        var failure: DiskImageError?
        bytes.withUnsafeBytes { raw in
            do throws(DiskImageError) { try write(raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func write(_ bytes: Bytes, at offset: UInt64) throws(DiskImageError) { try write(bytes.storage, at: offset) }

    func truncate(to size: UInt64) throws(DiskImageError) {
        guard ImageFile.addressable(size, 0) else {
            throw DiskImageError(.io, "cannot resize \(path) to \(size) bytes: past the largest file size")
        }
        do {
            try fd.resize(to: Int64(size))
        } catch {
            throw DiskImageError(.io, "cannot resize \(path): \(error)")
        }
    }

    /// The ranges of `0..<end` that hold data according to SEEK_DATA/SEEK_HOLE (the whole range when
    /// the file system cannot tell).
    func dataRanges(end: UInt64) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var position: Int64 = 0
        while UInt64(position) < end {
            let data: Int64
            do {
                data = try fd.seek(offset: position, from: ImageFile.seekData)
            } catch Errno.noSuchAddressOrDevice {
                break  // no data past `position`
            } catch {
                return [0..<end]
            }
            if UInt64(data) >= end { break }
            let hole = (try? fd.seek(offset: data, from: ImageFile.seekHole)) ?? Int64(clamping: end)
            let upper = min(UInt64(hole), end)
            ranges.append(UInt64(data)..<upper)
            position = hole
        }
        return ranges
    }
}
