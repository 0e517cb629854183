import SystemPackage

/// A byte range of an open disk file (one partition), read and written in place with `pread` and
/// `pwrite`; offsets are relative to the start of the range.
struct DiskRegion {
    let descriptor: FileDescriptor
    let path: String
    let start: Int64
    let length: Int64

    func read(_ offset: Int64, _ count: Int) throws(BuilderError) -> [UInt8] {
        guard offset >= 0, offset + Int64(count) <= length else {
            throw BuilderError("\(path): read of \(count) bytes at \(offset) is outside the partition")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got: Int
            do {
                got = try bytes.withUnsafeMutableBytes { buffer in
                    try descriptor.read(
                        fromAbsoluteOffset: start + offset + Int64(done),
                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
                }
            } catch {
                throw BuilderError("\(path): cannot read at \(start + offset): \(error)")
            }
            guard got > 0 else { throw BuilderError("\(path): cannot read at \(start + offset): end of file") }
            done += got
        }
        return bytes
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws(BuilderError) {
        guard offset >= 0, offset + Int64(bytes.count) <= length else {
            throw BuilderError("\(path): write of \(bytes.count) bytes at \(offset) is outside the partition")
        }
        do {
            try descriptor.writeAll(toAbsoluteOffset: start + offset, bytes)
        } catch {
            throw BuilderError("\(path): cannot write at \(start + offset): \(error)")
        }
    }
}

/// Little-endian fields in a byte array, as ext4 and FAT store every integer.
extension Array where Element == UInt8 {
    func le16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }

    func le32(_ at: Int) -> UInt32 {
        UInt32(self[at]) | UInt32(self[at + 1]) << 8 | UInt32(self[at + 2]) << 16 | UInt32(self[at + 3]) << 24
    }

    mutating func putLE16(_ value: UInt16, at: Int) {
        self[at] = UInt8(value & 0xFF)
        self[at + 1] = UInt8(value >> 8)
    }

    mutating func putLE32(_ value: UInt32, at: Int) {
        for index in 0..<4 { self[at + index] = UInt8((value >> (8 * UInt32(index))) & 0xFF) }
    }
}
