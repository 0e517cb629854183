#if canImport(Glibc)
    import Glibc
#endif

/// The bytes of a regular file, handed over in runs so that a file never has to be whole in memory.
package protocol Ext4Contents {
    /// Calls `body` with each run of the file's bytes and the offset in the file where it starts, in
    /// increasing order of offset; what no run covers is a hole (libarchive's sparse blocks map here).
    mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws
}

/// A file's bytes held in memory.
package struct Ext4Bytes: Ext4Contents {
    package var bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withUnsafeBytes { try body(0, $0) }
    }
}

extension Ext4Bytes {
    /// Byte order of names (`memcmp`, then the shorter first): generic
    /// `lexicographicallyPrecedes` dominated a debug build's run on a 200,000-entry tree.
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let common = min(a.count, b.count)
        let order = a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                guard let x = a.baseAddress, let y = b.baseAddress, common > 0 else { return Int32(0) }
                return memcmp(x, y, common)
            }
        }
        return order != 0 ? order < 0 : a.count < b.count
    }
}
