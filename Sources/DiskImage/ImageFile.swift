import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open file descriptor with positioned reads and writes; closed when the owner goes away.
final class ImageFile: @unchecked Sendable {
    // @unchecked: the descriptor is immutable and pread/pwrite are safe to call from several threads.

    let fd: Int32
    let path: String

    // Linux lseek whences for sparse files (not exported by Glibc's Swift overlay).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    /// Opens `path` read-only.
    init(reading path: String) throws(DiskImageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DiskImageError(.io, "cannot open \(path): \(ImageFile.lastError())") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw DiskImageError(.io, "cannot open \(path): is a directory")
        }
        self.fd = fd
        self.path = path
    }

    /// Opens `path` for writing, truncating it (used on an `AtomicOutput`'s temporary file).
    init(writing path: String, displayName: String) throws(DiskImageError) {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DiskImageError(.io, "cannot write \(displayName): \(ImageFile.lastError())") }
        self.fd = fd
        self.path = displayName
    }

    deinit { close(fd) }

    static func lastError() -> String { String(cString: strerror(errno)) }

    var size: UInt64 {
        get throws(DiskImageError) {
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                throw DiskImageError(.io, "cannot stat \(path): \(ImageFile.lastError())")
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

    func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskImageError) {
        var failure: DiskImageError?
        bytes.withUnsafeBytes { raw in
            do throws(DiskImageError) { try write(raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func write(_ bytes: Bytes, at offset: UInt64) throws(DiskImageError) { try write(bytes.storage, at: offset) }

    func truncate(to size: UInt64) throws(DiskImageError) {
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
            if hole < 0 { hole = off_t(end) }
            let upper = min(UInt64(hole), end)
            ranges.append(UInt64(data)..<upper)
            position = hole
        }
        return ranges
    }
}

/// Sequential output through two large buffers: one fills while the other is written by a background
/// thread, so that copying into the page cache overlaps reading the source.
final class AppendBuffer {
    let file: ImageFile
    private(set) var position: UInt64
    private let capacity = 8 << 20
    private var buffer: UnsafeMutableRawBufferPointer
    private var spare: UnsafeMutableRawBufferPointer
    private var used = 0
    private var bufferStart: UInt64
    private let writer = DispatchQueue(label: "kiln.append-buffer")
    private let pending = DispatchGroup()
    private let failure = WriteFailure()

    init(file: ImageFile, position: UInt64) {
        self.file = file
        self.position = position
        bufferStart = position
        buffer = .allocate(byteCount: capacity, alignment: 4096)
        spare = .allocate(byteCount: capacity, alignment: 4096)
    }

    deinit {
        pending.wait()
        buffer.deallocate()
        spare.deallocate()
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(DiskImageError) {
        if used + bytes.count > capacity { try hand() }
        if bytes.count >= capacity {
            try wait()
            try AppendBuffer.writeSkippingZeros(bytes, to: file, at: position)
            position += UInt64(bytes.count)
            bufferStart = position
            return
        }
        if let source = bytes.baseAddress, let target = buffer.baseAddress, bytes.count > 0 {
            (target + used).copyMemory(from: source, byteCount: bytes.count)
        }
        used += bytes.count
        position += UInt64(bytes.count)
    }

    func append(_ bytes: [UInt8]) throws(DiskImageError) {
        var failure: DiskImageError?
        bytes.withUnsafeBytes { raw in
            do throws(DiskImageError) { try append(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Appends zeros up to the next multiple of `alignment`.
    func pad(to alignment: UInt64) throws(DiskImageError) {
        let target = position.roundedUp(to: alignment)
        if target > position { try append([UInt8](repeating: 0, count: Int(target - position))) }
    }

    /// Starts writing the full buffer in the background and switches to the spare one.
    private func hand() throws(DiskImageError) {
        try wait()
        guard used > 0 else {
            bufferStart = position
            return
        }
        let full = UnsafeSendableBuffer(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
        let offset = bufferStart
        let file = self.file
        let failure = self.failure
        writer.async(group: pending) {
            do throws(DiskImageError) { try AppendBuffer.writeSkippingZeros(full.value, to: file, at: offset) } catch {
                failure.set(error)
            }
        }
        swap(&buffer, &spare)
        used = 0
        bufferStart = position
    }

    private func wait() throws(DiskImageError) {
        pending.wait()
        if let error = failure.get() { throw error }
    }

    /// Writes everything appended so far; the file is up to date afterwards.
    func flush() throws(DiskImageError) {
        try hand()
        try wait()
        // Zero pages at the end were skipped: the file must still reach `position`.
        if try file.size < position { try file.truncate(to: position) }
    }

    /// Writes the non-zero 4 KiB pages of `bytes`, leaving holes for zero ones: the output only ever
    /// grows into fresh space, which reads as zero, so the holes cost nothing and save disk space.
    static func writeSkippingZeros(_ bytes: UnsafeRawBufferPointer, to file: ImageFile, at offset: UInt64)
        throws(DiskImageError)
    {
        let page = 4096
        var runStart: Int? = nil
        var i = 0
        while i < bytes.count {
            let n = min(page, bytes.count - i)
            let zero = ZeroCheck.isZero(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
            if zero, let start = runStart {
                try file.write(UnsafeRawBufferPointer(rebasing: bytes[start..<i]), at: offset + UInt64(start))
                runStart = nil
            } else if !zero && runStart == nil {
                runStart = i
            }
            i += n
        }
        if let start = runStart {
            try file.write(UnsafeRawBufferPointer(rebasing: bytes[start...]), at: offset + UInt64(start))
        }
    }
}

/// The first error of a background write.
private final class WriteFailure: @unchecked Sendable {
    // @unchecked: `error` is only touched while holding `lock`.
    private let lock = NSLock()
    private var error: DiskImageError?
    func set(_ e: DiskImageError) { lock.withLock { if error == nil { error = e } } }
    func get() -> DiskImageError? { lock.withLock { error } }
}

/// A buffer handed to the writer thread, which is its only user until `pending` is waited on.
private struct UnsafeSendableBuffer: @unchecked Sendable {
    // @unchecked: the owner does not touch the memory until the background write has finished.
    let value: UnsafeRawBufferPointer
    init(_ value: UnsafeRawBufferPointer) { self.value = value }
}
