/// A growable byte array with explicit-endian integer access, for building and parsing headers.
///
/// Every multi-byte field in a disk format is read and written through here, with its byte order
/// named at the call site; no Swift struct memory is ever written to disk.
struct Bytes: Sendable {
    var storage: [UInt8]

    init(count: Int) { storage = [UInt8](repeating: 0, count: count) }
    init(_ bytes: [UInt8]) { storage = bytes }

    var count: Int { storage.count }

    subscript(index: Int) -> UInt8 {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    // MARK: little-endian

    mutating func putLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { raw in
            for i in 0..<raw.count { storage[offset + i] = raw[i] }
        }
    }

    func getLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { raw in
            for i in 0..<raw.count { raw[i] = storage[offset + i] }
        }
        return T(littleEndian: v)
    }

    // MARK: big-endian

    mutating func putBE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var v = value.bigEndian
        withUnsafeBytes(of: &v) { raw in
            for i in 0..<raw.count { storage[offset + i] = raw[i] }
        }
    }

    func getBE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { raw in
            for i in 0..<raw.count { raw[i] = storage[offset + i] }
        }
        return T(bigEndian: v)
    }

    // MARK: bytes and text

    mutating func put(_ bytes: [UInt8], at offset: Int) {
        storage.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    mutating func putASCII(_ text: String, at offset: Int) {
        put(Array(text.utf8), at: offset)
    }

    func slice(_ offset: Int, _ length: Int) -> [UInt8] {
        Array(storage[offset..<(offset + length)])
    }

    func ascii(_ offset: Int, _ length: Int) -> String {
        String(decoding: storage[offset..<(offset + length)], as: UTF8.self)
    }
}

extension UInt64 {
    /// Rounds up to a multiple of `alignment` (a power of two or any positive number).
    func roundedUp(to alignment: UInt64) -> UInt64 {
        (self + alignment - 1) / alignment * alignment
    }
}

extension Int {
    func roundedUp(to alignment: Int) -> Int {
        (self + alignment - 1) / alignment * alignment
    }
}
