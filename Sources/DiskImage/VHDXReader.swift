import KilnSupport

/// Reads dynamic and fixed VHDX files without a pending log (differencing disks are refused).
final class VHDXReader: DiskReader {
    let file: ImageFile
    let info: ImageInfo
    private let blockSize: UInt64
    private let chunkRatio: UInt64
    private let bat: [UInt64]
    private let fileSize: UInt64

    init(file: ImageFile) throws(DiskImageError) {
        self.file = file
        let path = file.path
        fileSize = try file.size
        guard fileSize >= VHDX.batOffset else {
            throw DiskImageError(.truncated, "\(path) is truncated: shorter than VHDX's fixed regions")
        }
        guard try file.readBytes(8, at: 0).ascii(0, 8) == "vhdxfile" else {
            throw DiskImageError(.corrupt, "\(path): no VHDX signature")
        }

        // The current header is the valid one with the larger sequence number ([MS-VHDX] 2.2.2.1).
        var best: Bytes?
        for offset in VHDX.headerOffsets {
            var h = try file.readBytes(4096, at: offset)
            guard h.ascii(0, 4) == "head" else { continue }
            let crc = h.getLE(UInt32.self, at: 4)
            h.putLE(UInt32(0), at: 4)
            guard CRC32C.checksum(h.storage) == crc else { continue }
            if h.getLE(UInt64.self, at: 8) >= best?.getLE(UInt64.self, at: 8) ?? 0 { best = h }
        }
        guard let header = best else {
            throw DiskImageError(.corrupt, "\(path): neither VHDX header has a valid checksum")
        }
        guard header.slice(48, 16) == GUID.zero.bytes else {
            throw DiskImageError(
                .unsupported,
                "\(path): the VHDX has a log to replay (it was not closed cleanly); open it once in Hyper-V or qemu first"
            )
        }

        var regions: Bytes?
        for offset in VHDX.regionTableOffsets {
            var r = try file.readBytes(64 << 10, at: offset)
            guard r.ascii(0, 4) == "regi" else { continue }
            let crc = r.getLE(UInt32.self, at: 4)
            r.putLE(UInt32(0), at: 4)
            if CRC32C.checksum(r.storage) == crc {
                regions = r
                break
            }
        }
        guard let regions else {
            throw DiskImageError(.corrupt, "\(path): neither VHDX region table has a valid checksum")
        }
        var batRegion: (UInt64, UInt32)?
        var metadataRegion: (UInt64, UInt32)?
        for i in 0..<Int(min(regions.getLE(UInt32.self, at: 8), 2047)) {
            let base = 16 + i * 32
            let guid = GUID(mixedEndian: regions.slice(base, 16))
            let region = (regions.getLE(UInt64.self, at: base + 16), regions.getLE(UInt32.self, at: base + 24))
            if guid == VHDX.batRegion {
                batRegion = region
            } else if guid == VHDX.metadataRegion {
                metadataRegion = region
            } else if regions.getLE(UInt32.self, at: base + 28) & 1 != 0 {
                throw DiskImageError(.unsupported, "\(path): VHDX requires an unknown region \(guid)")
            }
        }
        guard let batRegion, let metadataRegion else {
            throw DiskImageError(.corrupt, "\(path): VHDX region table lacks the BAT or metadata")
        }
        guard fits(metadataRegion.0, UInt64(metadataRegion.1), in: fileSize),
            fits(batRegion.0, UInt64(batRegion.1), in: fileSize)
        else {
            throw DiskImageError(.truncated, "\(path) is truncated: VHDX regions lie past the end of the file")
        }
        // The metadata region starts with a 64 KiB table ([MS-VHDX] 2.6.1); kiln reads it whole.
        guard metadataRegion.1 >= 64 << 10, metadataRegion.1 <= 32 << 20 else {
            throw DiskImageError(.corrupt, "\(path): VHDX metadata region of \(metadataRegion.1) bytes is invalid")
        }

        let meta = try file.readBytes(Int(metadataRegion.1), at: metadataRegion.0)
        guard meta.ascii(0, 8) == "metadata" else { throw DiskImageError(.corrupt, "\(path): no VHDX metadata table") }
        var items: [GUID: (Int, Int)] = [:]
        for i in 0..<Int(min(meta.getLE(UInt16.self, at: 10), 2047)) {
            let base = 32 + i * 32
            let guid = GUID(mixedEndian: meta.slice(base, 16))
            let offset = Int(meta.getLE(UInt32.self, at: base + 16))
            let length = Int(meta.getLE(UInt32.self, at: base + 20))
            guard offset <= meta.count, length <= meta.count - offset else {
                throw DiskImageError(.corrupt, "\(path): VHDX metadata item \(guid) out of range")
            }
            items[guid] = (offset, length)
        }
        guard let params = items[VHDX.fileParameters], params.1 >= 8, let sizeItem = items[VHDX.virtualDiskSize],
            sizeItem.1 >= 8
        else {
            throw DiskImageError(.corrupt, "\(path): VHDX metadata lacks file parameters or virtual disk size")
        }
        blockSize = UInt64(meta.getLE(UInt32.self, at: params.0))
        if meta.getLE(UInt32.self, at: params.0 + 4) & 2 != 0 || items[VHDX.parentLocator] != nil {
            throw DiskImageError(.unsupported, "\(path): differencing VHDX images are not supported")
        }
        guard blockSize >= 1 << 20, blockSize <= 256 << 20, blockSize & (blockSize - 1) == 0 else {
            throw DiskImageError(.corrupt, "\(path): VHDX block size \(blockSize) is invalid")
        }
        var logicalSector: UInt64 = 512
        if let item = items[VHDX.logicalSectorSize] {
            guard item.1 >= 4 else {
                throw DiskImageError(.corrupt, "\(path): VHDX logical sector size item is too short")
            }
            logicalSector = UInt64(meta.getLE(UInt32.self, at: item.0))
        }
        guard logicalSector == 512 || logicalSector == 4096 else {
            throw DiskImageError(.corrupt, "\(path): VHDX logical sector size \(logicalSector) is invalid")
        }
        let virtualSize = meta.getLE(UInt64.self, at: sizeItem.0)
        // [MS-VHDX] 2.6.2.3: at most 64 TiB.
        guard virtualSize <= 64 << 40 else {
            throw DiskImageError(.corrupt, "\(path): VHDX virtual size \(virtualSize) is larger than 64 TiB")
        }
        chunkRatio = (UInt64(1) << 23) * logicalSector / blockSize
        let payload = (virtualSize + blockSize - 1) / blockSize
        let entries = payload == 0 ? 0 : payload + (payload - 1) / chunkRatio
        guard entries * 8 <= UInt64(batRegion.1) else {
            throw DiskImageError(.corrupt, "\(path): VHDX BAT region is too small for \(virtualSize) bytes")
        }
        let table = try file.readBytes(Int(entries) * 8, at: batRegion.0)
        bat = (0..<Int(entries)).map { table.getLE(UInt64.self, at: $0 * 8) }
        info = ImageInfo(
            format: .vhdx, subformat: .dynamic, virtualSize: virtualSize, allocatedBytes: file.allocatedBytes,
            fileSize: fileSize, clusterSize: Int(blockSize))
    }

    private func entry(_ block: UInt64) -> UInt64 { bat[Int(block + block / chunkRatio)] }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let inBlock = Int(position % blockSize)
            let n = min(Int(blockSize) - inBlock, buffer.count - done)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            let block = position / blockSize
            let e = position < info.virtualSize ? entry(block) : 0
            switch e & 7 {
            case VHDX.blockFullyPresent:
                let host = (e >> 20) * VHDX.mib
                guard fits(host, blockSize, in: fileSize.roundedUp(to: VHDX.mib)) else {
                    throw DiskImageError(
                        .truncated, "\(file.path) is truncated: VHDX block \(block) lies past the end of the file")
                }
                try file.readPadded(into: out, at: host + UInt64(inBlock))
            case VHDX.blockPartiallyPresent:
                throw DiskImageError(
                    .unsupported, "\(file.path): partially present VHDX blocks (differencing) are not supported")
            default:
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += n
        }
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        let payload = (info.virtualSize + blockSize - 1) / blockSize
        for block in 0..<payload where entry(block) & 7 == VHDX.blockFullyPresent {
            let start = block * blockSize
            ranges.append(start..<min(start + blockSize, info.virtualSize))
        }
        return mergeRanges(ranges)
    }
}
