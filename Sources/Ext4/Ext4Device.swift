import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The byte range of a disk file that holds the file system, written with `pwrite`; offsets are
/// relative to the start of the range. The writer owns the descriptor and closes it in `deinit`.
final class Ext4Device {
    let path: String
    let start: Int64
    let length: Int64
    private let descriptor: FileDescriptor

    init(path: String, start: Int64, length: Int64) throws(Ext4Error) {
        guard start >= 0, length > 0 else {
            throw Ext4Error(.invalidGeometry, "\(path): region at \(start) of \(length) bytes is empty or negative")
        }
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .readWrite, options: [.create, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644))
        } catch {
            throw Ext4Error(.io, "\(path): cannot open: \(error)")
        }
        let status: Stat
        do {
            status = try fd.stat()
        } catch {
            try? fd.close()
            throw Ext4Error(.io, "\(path): cannot stat: \(error)")
        }
        // A regular file shorter than the region grows to hold it (sparsely); a block device cannot.
        if status.type == .regular, status.size < start + length {
            do {
                try fd.resize(to: start + length)
            } catch {
                try? fd.close()
                throw Ext4Error(.io, "\(path): cannot extend to \(start + length) bytes: \(error)")
            }
        }
        self.path = path
        self.start = start
        self.length = length
        self.descriptor = fd
    }

    deinit { try? descriptor.close() }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(Ext4Error) {
        guard offset >= 0, offset + Int64(bytes.count) <= length, bytes.baseAddress != nil else {
            if bytes.isEmpty { return }
            throw Ext4Error(.io, "\(path): write of \(bytes.count) bytes at \(offset) is outside the region")
        }
        var done = 0
        while done < bytes.count {
            do {
                done += try descriptor.write(
                    toAbsoluteOffset: start + offset + Int64(done), UnsafeRawBufferPointer(rebasing: bytes[done...]))
            } catch {
                throw Ext4Error(.io, "\(path): cannot write at \(start + offset): \(error)")
            }
        }
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws(Ext4Error) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(Ext4Error) in try write(buffer, at: offset) }
        }.get()
    }

    /// Makes the whole region read as zeros: a hole punched where the file system allows it, so that a
    /// sparse image stays sparse, and zeros written where it does not.
    func zeroAll() throws(Ext4Error) {
        if let fallocate = Self.fallocate, fallocate(descriptor.rawValue, Self.punchHole, start, length) == 0 { return }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < length {
            let count = Int(min(Int64(chunk.count), length - offset))
            try chunk.withUnsafeBytes { buffer in
                Result { () throws(Ext4Error) in
                    try write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
                }
            }.get()
            offset += Int64(count)
        }
    }

    func sync() throws(Ext4Error) {
        // swift-system has no fsync.
        guard fsync(descriptor.rawValue) == 0 else {
            throw Ext4Error(.io, "\(path): cannot sync: \(Errno(rawValue: errno))")
        }
    }

    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` (linux/falloc.h).
    private static let punchHole: Int32 = 0x02 | 0x01

    /// glibc's `fallocate`, which Swift's Glibc module leaves out (it is declared under _GNU_SOURCE).
    private static let fallocate: (@convention(c) (Int32, Int32, Int64, Int64) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate64") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32, Int64, Int64) -> Int32).self)
    }()
}

/// Little-endian fields in a byte array: every ext4 integer is stored so (the journal's are not).
extension Array where Element == UInt8 {
    func le16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }

    func le32(_ at: Int) -> UInt32 {
        UInt32(self[at]) | UInt32(self[at + 1]) << 8 | UInt32(self[at + 2]) << 16 | UInt32(self[at + 3]) << 24
    }

    mutating func putLE16(_ value: UInt16, at: Int) {
        self[at] = UInt8(truncatingIfNeeded: value)
        self[at + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    mutating func putLE32(_ value: UInt32, at: Int) {
        for index in 0..<4 { self[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }

    mutating func putLE64(_ value: UInt64, at: Int) {
        for index in 0..<8 { self[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }

    mutating func putBE32(_ value: UInt32, at: Int) {
        for index in 0..<4 { self[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(3 - index))) }
    }

    mutating func put(_ bytes: some Collection<UInt8>, at: Int) {
        replaceSubrange(at..<at + bytes.count, with: bytes)
    }
}
