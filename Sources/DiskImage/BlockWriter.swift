/// How a writer wants its blocks compressed before it receives them.
enum BlockCompression: Sendable {
    /// Raw deflate (no zlib header) with this window (qcow2: 12 bits, what qemu inflates).
    case rawDeflate(windowBits: Int32)
    /// A zlib stream (RFC 1950), as streamOptimized VMDK grains.
    case zlib
}

/// The format-specific half of a conversion: receives the non-zero blocks of the image in ascending
/// order and lays them out in its format; everything it is not given reads as zero.
protocol BlockWriter: AnyObject {
    /// The unit the writer allocates in (qcow2 cluster, VMDK grain, VHD/VHDX/VDI block).
    var blockSize: Int { get }
    /// Set when blocks must arrive compressed too.
    var compression: BlockCompression? { get }
    /// One block of `blockSize` bytes (zero-padded past the virtual size), never all zero.
    ///
    /// - Parameter compressed: the block compressed as `compression` asks, when it is set.
    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError)
    /// Whether the format stores identifiers (UUIDs, a content ID): the converter then digests the
    /// blocks it writes to derive them, unless the caller gave a seed.
    var storesIdentifiers: Bool { get }
    /// Writes the tables and trailers; the file is complete afterwards.
    ///
    /// - Parameter identity: where the format's identifiers come from.
    func finish(_ identity: ImageIdentity) throws(DiskImageError)
}

extension BlockWriter {
    var storesIdentifiers: Bool { false }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum ZeroCheck {
    private static let zeros = [UInt8](repeating: 0, count: 64 << 10)

    /// Whether every byte of `buffer` is zero.
    static func isZero(_ buffer: UnsafeRawBufferPointer) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        var offset = 0
        return zeros.withUnsafeBytes { zero in
            guard let zeroBase = zero.baseAddress else { return false }
            while offset < buffer.count {
                let n = min(zero.count, buffer.count - offset)
                if memcmp(base + offset, zeroBase, n) != 0 { return false }
                offset += n
            }
            return true
        }
    }
}
