#if canImport(Glibc)
    import Glibc
#endif

/// Gathers consecutive blocks into one `pwrite` of up to a MiB, and holds the partial block a file's
/// runs are assembled in.
final class Ext4DataWriter {
    static let batchBytes = 1 << 20
    private let device: Ext4Device
    private let batch = UnsafeMutableRawBufferPointer.allocate(byteCount: batchBytes, alignment: 4096)
    private var batchCount = 0
    private var batchStart: Int64 = 0
    /// The block being assembled from runs that do not cover it whole.
    let block = UnsafeMutableRawBufferPointer.allocate(byteCount: Ext4Geometry.blockSize, alignment: 4096)
    private let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Ext4Geometry.blockSize, alignment: 4096)

    init(device: Ext4Device) {
        self.device = device
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        block.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        batch.deallocate()
        block.deallocate()
        zeros.deallocate()
    }

    static func isZero(_ bytes: UnsafeRawBufferPointer, zeros: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, let zero = zeros.baseAddress else { return true }
        return memcmp(base, zero, bytes.count) == 0
    }

    func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool { Self.isZero(bytes, zeros: UnsafeRawBufferPointer(zeros)) }

    /// memset, not `initializeMemory(repeating:)`, which an unoptimized build runs byte by byte.
    func clearBlock() {
        if let base = block.baseAddress { memset(base, 0, block.count) }
    }

    /// Queues one block's bytes for disk block `physical`.
    func append(_ bytes: UnsafeRawBufferPointer, at physical: Int64) throws(Ext4Error) {
        let blockSize = Ext4Geometry.blockSize
        if batchCount > 0, batchCount == Self.batchBytes || physical != batchStart + Int64(batchCount / blockSize) {
            try flush()
        }
        if batchCount == 0 { batchStart = physical }
        UnsafeMutableRawBufferPointer(rebasing: batch[batchCount..<batchCount + blockSize]).copyMemory(from: bytes)
        batchCount += blockSize
    }

    func append(_ bytes: [UInt8], at physical: Int64) throws(Ext4Error) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(Ext4Error) in try append(buffer, at: physical) }
        }.get()
    }

    func flush() throws(Ext4Error) {
        guard batchCount > 0 else { return }
        try device.write(
            UnsafeRawBufferPointer(rebasing: batch[0..<batchCount]), at: batchStart * Int64(Ext4Geometry.blockSize))
        batchCount = 0
    }
}
