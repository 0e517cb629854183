/// A raw image: the guest bytes as they are; holes in a sparse file are zero regions.
final class RawReader: DiskReader {
    let file: ImageFile
    let info: ImageInfo

    init(file: ImageFile) throws(DiskImageError) {
        self.file = file
        let size = try file.size
        info = ImageInfo(format: .raw, virtualSize: size, allocatedBytes: file.allocatedBytes, fileSize: size)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        try file.readPadded(into: buffer, at: offset)
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        file.dataRanges(end: info.virtualSize)
    }
}

/// Writes a sparse raw file: only non-zero blocks are written, the rest stays a hole.
final class RawWriter: BlockWriter {
    let file: ImageFile
    let virtualSize: UInt64
    let blockSize = 1 << 20
    let compression: BlockCompression? = nil
    /// Blocks arrive in ascending order: written through a buffer on a background thread, skipping holes.
    private let out: AppendBuffer

    init(file: ImageFile, virtualSize: UInt64) throws(DiskImageError) {
        self.file = file
        self.virtualSize = virtualSize
        try file.truncate(to: virtualSize)
        out = try AppendBuffer(file: file, position: 0)
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        let offset = index * UInt64(blockSize)
        let length = Int(min(UInt64(blockSize), virtualSize - offset))
        try out.skip(to: offset)
        try out.append(UnsafeRawBufferPointer(rebasing: data[0..<length]))
    }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        try out.flush()
    }
}
