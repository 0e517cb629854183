/// VirtualBox VDI, header version 1.1 (VirtualBox's VDICore.h; qemu's block/vdi.c): a 64-byte text,
/// signature and version, then the header; every field little-endian.
enum VDI {
    static let signature: UInt32 = 0xBEDA_107F
    static let version: UInt32 = 0x0001_0001
    static let typeDynamic: UInt32 = 1
    static let typeStatic: UInt32 = 2
    static let unallocated: UInt32 = 0xFFFF_FFFF
    static let discarded: UInt32 = 0xFFFF_FFFE
    static let blockSize: UInt32 = 1 << 20

    // Field offsets from the start of the file.
    static let headerSizeAt = 0x48, typeAt = 0x4C, offsetBlocksAt = 0x154, offsetDataAt = 0x158
    static let sectorSizeAt = 0x168, diskSizeAt = 0x170, blockSizeAt = 0x178, blockExtraAt = 0x17C
    static let blocksAt = 0x180, allocatedAt = 0x184, uuidCreateAt = 0x188, uuidModifyAt = 0x198

    static func header(
        diskSize: UInt64, blocks: UInt32, allocated: UInt32, offsetBlocks: UInt32, offsetData: UInt32,
        uuidCreate: GUID, uuidModify: GUID
    ) -> Bytes {
        var b = Bytes(count: 512)
        b.putASCII("<<< kiln VirtualBox Disk Image >>>\n", at: 0)
        b.putLE(signature, at: 0x40)
        b.putLE(version, at: 0x44)
        b.putLE(UInt32(0x180), at: headerSizeAt)  // header without the LCHS geometry, as qemu writes
        b.putLE(typeDynamic, at: typeAt)
        b.putLE(offsetBlocks, at: offsetBlocksAt)
        b.putLE(offsetData, at: offsetDataAt)
        b.putLE(UInt32(512), at: sectorSizeAt)
        b.putLE(diskSize, at: diskSizeAt)
        b.putLE(blockSize, at: blockSizeAt)
        b.putLE(blocks, at: blocksAt)
        b.putLE(allocated, at: allocatedAt)
        b.put(uuidCreate.plainBytes, at: uuidCreateAt)
        b.put(uuidModify.plainBytes, at: uuidModifyAt)
        return b
    }
}

/// Writes a dynamic VDI: header, block map, then 1 MiB blocks appended in order.
final class VDIWriter: BlockWriter {
    let file: ImageFile
    let blockSize = Int(VDI.blockSize)
    let compression: BlockCompression? = nil
    let size: UInt64
    private let blocks: UInt64
    /// The guest block of each allocated block, in file order: blocks arrive in ascending order, so
    /// this is all the map holds besides "unallocated", and it stays small for a sparse disk however
    /// large its virtual size.
    private var allocatedBlocks: [UInt64] = []
    private let offsetData: UInt64
    private let out: AppendBuffer

    /// The most blocks a VDI can map: the map sits between the header and the data, whose offset is a
    /// 32-bit field (qemu's limit is the same, just under 1 PiB).
    static let maxBlocks: UInt64 = ((UInt64(UInt32.max) & ~UInt64((1 << 20) - 1)) - 512) / 4

    init(file: ImageFile, virtualSize: UInt64) throws(DiskImageError) {
        self.file = file
        size = virtualSize.roundedUp(to: 512)
        blocks = (size + UInt64(blockSize) - 1) / UInt64(blockSize)
        guard blocks <= VDIWriter.maxBlocks else {
            throw DiskImageError(
                .invalidArgument,
                "a VDI holds at most \(VDIWriter.maxBlocks * UInt64(blockSize)) bytes, \(virtualSize) bytes asked")
        }
        offsetData = (512 + blocks * 4).roundedUp(to: 1 << 20)
        out = try AppendBuffer(file: file, position: offsetData)
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        allocatedBlocks.append(index)
        try out.append(data)
    }

    var storesIdentifiers: Bool { true }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        try out.flush()
        try file.write(
            VDI.header(
                diskSize: size, blocks: UInt32(blocks), allocated: UInt32(allocatedBlocks.count), offsetBlocks: 512,
                offsetData: UInt32(offsetData), uuidCreate: identity.guid("vdi uuid create"),
                uuidModify: identity.guid("vdi uuid modify")),
            at: 0)
        // The map, a chunk at a time: a huge sparse disk's map is mostly "unallocated".
        let chunk: UInt64 = 1 << 18
        var next = 0
        var start: UInt64 = 0
        while start < blocks {
            let count = min(chunk, blocks - start)
            var table = Bytes(count: Int(count) * 4)
            for i in 0..<Int(count) { table.putLE(VDI.unallocated, at: i * 4) }
            while next < allocatedBlocks.count && allocatedBlocks[next] < start + count {
                table.putLE(UInt32(next), at: Int(allocatedBlocks[next] - start) * 4)
                next += 1
            }
            try file.write(table, at: 512 + start * 4)
            start += count
        }
        if try file.size < offsetData { try file.truncate(to: offsetData) }
    }
}

/// Reads dynamic and static VDIs.
final class VDIReader: DiskReader {
    let file: ImageFile
    let info: ImageInfo
    /// The block map is read a page at a time: a 64 TiB VDI's map is 256 MiB.
    private let mapOffset: UInt64
    private let blockCount: Int
    private var mapPages: [Int: [UInt32]] = [:]
    private static let pageEntries = 1 << 14
    private let blockSize: UInt64
    private let dataStart: UInt64
    private let fileSize: UInt64

    init(file: ImageFile) throws(DiskImageError) {
        self.file = file
        let path = file.path
        fileSize = try file.size
        guard fileSize >= 512 else {
            throw DiskImageError(.truncated, "\(path) is truncated: shorter than a VDI header")
        }
        let h = try file.readBytes(512, at: 0)
        guard h.getLE(UInt32.self, at: 0x40) == VDI.signature else {
            throw DiskImageError(.corrupt, "\(path): no VDI signature")
        }
        guard h.getLE(UInt32.self, at: 0x44) == VDI.version else {
            throw DiskImageError(
                .unsupported,
                "\(path): VDI version 0x\(String(h.getLE(UInt32.self, at: 0x44), radix: 16)) is not supported")
        }
        let type = h.getLE(UInt32.self, at: VDI.typeAt)
        guard type == VDI.typeDynamic || type == VDI.typeStatic else {
            throw DiskImageError(.unsupported, "\(path): VDI image type \(type) is not supported")
        }
        guard h.getLE(UInt32.self, at: VDI.sectorSizeAt) == 512 else {
            throw DiskImageError(.corrupt, "\(path): VDI sector size is not 512")
        }
        blockSize = UInt64(h.getLE(UInt32.self, at: VDI.blockSizeAt))
        guard blockSize >= 512, blockSize <= 256 << 20, blockSize % 512 == 0 else {
            throw DiskImageError(.corrupt, "\(path): VDI block size \(blockSize) is invalid")
        }
        guard h.getLE(UInt32.self, at: VDI.blockExtraAt) == 0 else {
            throw DiskImageError(.unsupported, "\(path): VDI block extra data is not supported")
        }
        let diskSize = h.getLE(UInt64.self, at: VDI.diskSizeAt)
        let blocks = h.getLE(UInt32.self, at: VDI.blocksAt)
        guard UInt64(blocks) * blockSize >= diskSize else {
            throw DiskImageError(.corrupt, "\(path): VDI has \(blocks) blocks for \(diskSize) bytes")
        }
        mapOffset = UInt64(h.getLE(UInt32.self, at: VDI.offsetBlocksAt))
        dataStart = UInt64(h.getLE(UInt32.self, at: VDI.offsetDataAt))
        guard fits(mapOffset, UInt64(blocks) * 4, in: fileSize) else {
            throw DiskImageError(.truncated, "\(path) is truncated: the VDI block map lies past the end of the file")
        }
        blockCount = Int(blocks)
        info = ImageInfo(
            format: .vdi, subformat: type == VDI.typeDynamic ? .dynamic : nil, virtualSize: diskSize,
            allocatedBytes: file.allocatedBytes, fileSize: fileSize, clusterSize: Int(blockSize))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let inBlock = Int(position % blockSize)
            let n = min(Int(blockSize) - inBlock, buffer.count - done)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            let index = Int(position / blockSize)
            let entry = position < info.virtualSize && index < blockCount ? try mapEntry(index) : VDI.unallocated
            if entry >= VDI.discarded {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            } else {
                let host = dataStart + UInt64(entry) * blockSize
                guard host + blockSize <= fileSize else {
                    throw DiskImageError(
                        .truncated, "\(file.path) is truncated: VDI block \(index) lies past the end of the file")
                }
                try file.read(into: out, at: host + UInt64(inBlock))
            }
            done += n
        }
    }

    private func mapEntry(_ index: Int) throws(DiskImageError) -> UInt32 {
        let page = index / VDIReader.pageEntries
        if let cached = mapPages[page] { return cached[index % VDIReader.pageEntries] }
        let first = page * VDIReader.pageEntries
        let count = min(VDIReader.pageEntries, blockCount - first)
        let bytes = try file.readBytes(count * 4, at: mapOffset + UInt64(first) * 4)
        let entries = (0..<count).map { bytes.getLE(UInt32.self, at: $0 * 4) }
        if mapPages.count >= 64 { mapPages.removeAll(keepingCapacity: true) }
        mapPages[page] = entries
        return entries[index % VDIReader.pageEntries]
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        // A page of the map at a time, straight from the file: the cache is for reads.
        var first = 0
        while first < blockCount {
            let count = min(VDIReader.pageEntries * 16, blockCount - first)
            let bytes = try file.readBytes(count * 4, at: mapOffset + UInt64(first) * 4)
            for i in 0..<count where bytes.getLE(UInt32.self, at: i * 4) < VDI.discarded {
                let start = UInt64(first + i) * blockSize
                if start >= info.virtualSize { break }
                let range = start..<min(start + blockSize, info.virtualSize)
                if let last = ranges.last, last.upperBound == range.lowerBound {
                    ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    ranges.append(range)
                }
            }
            first += count
        }
        return ranges
    }
}
