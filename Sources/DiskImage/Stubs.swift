enum VDI { static let signature: UInt32 = 0xBEDA_107F }
final class VHDXReader: DiskReader {
    let info: ImageInfo
    init(file: ImageFile) throws(DiskImageError) { throw DiskImageError(.unsupported, "vmdk") }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {}
    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] { [] }
}
final class VHDXWriter: BlockWriter {
    let blockSize = 1
    let compression: BlockCompression? = nil
    init(file: ImageFile, virtualSize: UInt64) throws(DiskImageError) { throw DiskImageError(.unsupported, "vmdk") }
    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {}
    func finish() throws(DiskImageError) {}
}
typealias VDIWriter = VHDXWriter
typealias VDIReader = VHDXReader
