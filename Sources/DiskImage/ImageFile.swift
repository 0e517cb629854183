import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open file descriptor with positioned reads and writes; closed when the owner goes away.
final class ImageFile: @unchecked Sendable {
    // @unchecked: the descriptors are immutable, pread/pwrite are safe to call from several threads, and
    // the one mutable flag is an atomic.

    let fd: Int32
    let path: String
    /// A second descriptor on an output, opened with O_DIRECT when asked (-1 otherwise, or when the file
    /// system refuses it): bulk data then goes straight to the device instead of being copied into the
    /// page cache, for a third of the CPU time, but at the device's speed.
    private let directFD: Int32
    /// A block device: its size comes from the device, not from stat.
    private var isBlockDevice = false
    /// Set once a direct write is refused (EINVAL: an alignment the device needs is larger than ours).
    private let directRefused = Atomic<Bool>(false)

    /// The alignment of memory, offset and length that direct writes use.
    static let directAlignment = 4096

    #if arch(x86_64) || arch(i386)
        private static let oDirect: Int32 = 0o40000
    #else
        // arm64, riscv64 and most others
        private static let oDirect: Int32 = 0o200000
    #endif

    // Linux lseek whences for sparse files (not exported by Glibc's Swift overlay).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    /// Opens `path` read-only: a regular file, or a block device unless `regularOnly`.
    ///
    /// Anything else (a FIFO, a socket, a character device, a directory) is refused before a byte is
    /// read: reading a FIFO would wait for a writer for ever. The open itself does not block either
    /// (O_NONBLOCK, cleared once the file is known to be one kiln reads).
    ///
    /// - Parameter noFollow: refuse a symbolic link in the last component (a backing file must be the
    ///   file beside the image, not a link to somewhere else).
    init(reading path: String, regularOnly: Bool = false, noFollow: Bool = false) throws(DiskImageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (noFollow ? O_NOFOLLOW : 0))
        guard fd >= 0 else {
            if noFollow && errno == ELOOP {
                throw DiskImageError(.io, "cannot open \(path): is a symbolic link")
            }
            throw DiskImageError(.io, "cannot open \(path): \(ImageFile.lastError())")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = ImageFile.lastError()
            close(fd)
            throw DiskImageError(.io, "cannot open \(path): \(reason)")
        }
        let kind = st.st_mode & S_IFMT
        if kind != S_IFREG && (regularOnly || kind != S_IFBLK) {
            close(fd)
            let what: String
            switch kind {
            case S_IFDIR: what = "is a directory"
            case S_IFIFO: what = "is a FIFO"
            case S_IFSOCK: what = "is a socket"
            case S_IFCHR: what = "is a character device"
            case S_IFBLK: what = "is a block device"
            default: what = "is not a regular file"
            }
            throw DiskImageError(.io, "cannot open \(path): \(what)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        self.fd = fd
        self.path = path
        directFD = -1
        isBlockDevice = kind == S_IFBLK
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
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskImageError(.io, "cannot write \(displayName): \(ImageFile.lastError())") }
        var st = stat()
        if fstat(fd, &st) != 0 || (st.st_size > 0 && ftruncate(fd, 0) != 0) {
            let reason = ImageFile.lastError()
            close(fd)
            throw DiskImageError(.io, "cannot write \(displayName): \(reason)")
        }
        self.fd = fd
        self.path = displayName
        directFD = direct ? open(path, O_WRONLY | O_CLOEXEC | ImageFile.oDirect) : -1
    }

    deinit {
        close(fd)
        if directFD >= 0 { close(directFD) }
    }

    static func lastError() -> String { String(cString: strerror(errno)) }

    /// Whether `count` bytes at `offset` lie within what a file offset (off_t) can address.
    static func addressable(_ offset: UInt64, _ count: Int) -> Bool {
        offset <= UInt64(Int64.max) - UInt64(max(0, count))
    }

    var size: UInt64 {
        get throws(DiskImageError) {
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                throw DiskImageError(.io, "cannot stat \(path): \(ImageFile.lastError())")
            }
            if isBlockDevice {
                let end = lseek(fd, 0, SEEK_END)
                guard end >= 0 else { throw DiskImageError(.io, "cannot size \(path): \(ImageFile.lastError())") }
                return UInt64(end)
            }
            return UInt64(st.st_size)
        }
    }

    /// Bytes the file occupies on disk.
    var allocatedBytes: UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return 0 }
        return UInt64(st.st_blocks) * 512
    }

    /// Reads exactly `buffer.count` bytes at `offset`; a short file is a truncated image.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard let base = buffer.baseAddress else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            throw DiskImageError(
                .truncated, "\(path) is truncated: needs \(buffer.count) bytes at offset \(offset), file ends first")
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskImageError(.io, "cannot read \(path): \(ImageFile.lastError())")
            }
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
            let n = pread(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskImageError(.io, "cannot read \(path): \(ImageFile.lastError())")
            }
            if n == 0 { break }
            done += n
        }
        if done < buffer.count {
            (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
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
        guard let base = buffer.baseAddress else { return }
        guard ImageFile.addressable(offset, buffer.count) else {
            throw DiskImageError(.io, "cannot write \(path): offset \(offset) is past the largest file size")
        }
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw DiskImageError(.io, "cannot write \(path): \(ImageFile.lastError())")
            }
            done += n
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
        if directFD >= 0 && !directRefused.load(ordering: .relaxed) && Int(bitPattern: base) % align == 0
            && offset % UInt64(align) == 0
        {
            let direct = buffer.count - buffer.count % align
            while done < direct {
                let n = pwrite(directFD, base + done, direct - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EINVAL && done == 0 {
                        directRefused.store(true, ordering: .relaxed)
                        break
                    }
                    throw DiskImageError(.io, "cannot write \(path): \(ImageFile.lastError())")
                }
                done += n
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
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw DiskImageError(.io, "cannot resize \(path): \(ImageFile.lastError())")
        }
    }

    /// The ranges of `0..<end` that hold data according to SEEK_DATA/SEEK_HOLE (the whole range when
    /// the file system cannot tell).
    func dataRanges(end: UInt64) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var position: off_t = 0
        while UInt64(position) < end {
            let data = lseek(fd, position, ImageFile.seekData)
            if data < 0 {
                if errno == ENXIO { break }
                return [0..<end]
            }
            if UInt64(data) >= end { break }
            var hole = lseek(fd, data, ImageFile.seekHole)
            if hole < 0 { hole = off_t(clamping: end) }
            let upper = min(UInt64(hole), end)
            ranges.append(UInt64(data)..<upper)
            position = hole
        }
        return ranges
    }
}
