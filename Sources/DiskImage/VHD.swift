import Foundation

/// The VHD footer and dynamic disk header (Microsoft "Virtual Hard Disk Image Format Specification"
/// 1.0, "Hard Disk Footer Format" and "Dynamic Disk Header Format"); every field is big-endian.
struct VHDFooter: Equatable {
    static let fixedType: UInt32 = 2
    static let dynamicType: UInt32 = 3
    static let differencingType: UInt32 = 4

    var dataOffset: UInt64
    var timestamp: UInt32
    /// qemu takes the size from the geometry unless the creator is one it trusts for `currentSize`;
    /// "qem2" is the tag that says the current size is exact (what qemu-img's force_size writes, and
    /// what Azure's documented conversions produce).
    var creatorApp = "qem2"
    var originalSize: UInt64
    var currentSize: UInt64
    var cylinders: UInt16
    var heads: UInt8
    var sectorsPerTrack: UInt8
    var diskType: UInt32
    var uniqueID: [UInt8]

    func encoded() -> Bytes {
        var b = Bytes(count: 512)
        b.putASCII("conectix", at: 0)
        b.putBE(UInt32(2), at: 8)  // features: reserved bit always set
        b.putBE(UInt32(0x0001_0000), at: 12)  // file format version 1.0
        b.putBE(dataOffset, at: 16)
        b.putBE(timestamp, at: 24)
        b.putASCII(creatorApp, at: 28)
        b.putBE(UInt32(0x0001_0000), at: 32)  // creator version
        b.putASCII("Wi2k", at: 36)  // creator host OS
        b.putBE(originalSize, at: 40)
        b.putBE(currentSize, at: 48)
        b.putBE(cylinders, at: 56)
        b[58] = heads
        b[59] = sectorsPerTrack
        b.putBE(diskType, at: 60)
        b.put(uniqueID, at: 68)
        b.putBE(VHDFooter.checksum(b, skipping: 64..<68), at: 64)
        return b
    }

    /// The one's complement of the byte sum, with the checksum field counted as zero.
    static func checksum(_ b: Bytes, skipping field: Range<Int>) -> UInt32 {
        var sum: UInt32 = 0
        for i in 0..<b.count where !field.contains(i) { sum &+= UInt32(b[i]) }
        return ~sum
    }

    static func decode(_ b: Bytes, path: String) throws(DiskImageError) -> VHDFooter {
        guard b.ascii(0, 8) == "conectix" else { throw DiskImageError(.corrupt, "\(path): no VHD footer cookie") }
        guard b.getBE(UInt32.self, at: 64) == checksum(b, skipping: 64..<68) else {
            throw DiskImageError(.corrupt, "\(path): the VHD footer checksum is wrong")
        }
        return VHDFooter(
            dataOffset: b.getBE(UInt64.self, at: 16), timestamp: b.getBE(UInt32.self, at: 24),
            creatorApp: b.ascii(28, 4), originalSize: b.getBE(UInt64.self, at: 40),
            currentSize: b.getBE(UInt64.self, at: 48), cylinders: b.getBE(UInt16.self, at: 56), heads: b[58],
            sectorsPerTrack: b[59], diskType: b.getBE(UInt32.self, at: 60), uniqueID: b.slice(68, 16))
    }

    /// CHS geometry for a size, as the spec's appendix computes it.
    static func geometry(for size: UInt64) -> (UInt16, UInt8, UInt8) {
        var total = size / 512
        if total > 65535 * 16 * 255 { total = 65535 * 16 * 255 }
        var spt: UInt64
        var heads: UInt64
        var cylTimesHeads: UInt64
        if total >= 65535 * 16 * 63 {
            spt = 255
            heads = 16
            cylTimesHeads = total / spt
        } else {
            spt = 17
            cylTimesHeads = total / spt
            heads = max(4, (cylTimesHeads + 1023) / 1024)
            if cylTimesHeads >= heads * 1024 || heads > 16 {
                spt = 31
                heads = 16
                cylTimesHeads = total / spt
            }
            if cylTimesHeads >= heads * 1024 {
                spt = 63
                heads = 16
                cylTimesHeads = total / spt
            }
        }
        return (UInt16(min(cylTimesHeads / heads, 65535)), UInt8(heads), UInt8(spt))
    }

    /// Seconds since 2000-01-01 00:00 UTC for a Unix time (the caller's, or now).
    static func timestamp(unix: UInt64?) -> UInt32 {
        let seconds: Int64 = unix.map { Int64(clamping: $0) } ?? Int64(Date().timeIntervalSince1970)
        return UInt32(clamping: max(0, seconds - 946_684_800))
    }

    /// A footer whose unique ID is still zero (set from the image's identity when it is written).
    static func make(size: UInt64, type: UInt32, dataOffset: UInt64, timestamp unix: UInt64?) -> VHDFooter {
        let (c, h, s) = geometry(for: size)
        return VHDFooter(
            dataOffset: dataOffset, timestamp: timestamp(unix: unix), originalSize: size, currentSize: size,
            cylinders: c, heads: h, sectorsPerTrack: s, diskType: type, uniqueID: [UInt8](repeating: 0, count: 16))
    }
}

/// The dynamic disk header, 1024 bytes at the footer's data offset; big-endian.
struct VHDDynamicHeader: Equatable {
    var tableOffset: UInt64
    var maxTableEntries: UInt32
    var blockSize: UInt32

    func encoded() -> Bytes {
        var b = Bytes(count: 1024)
        b.putASCII("cxsparse", at: 0)
        b.putBE(UInt64.max, at: 8)  // data offset: unused, all ones
        b.putBE(tableOffset, at: 16)
        b.putBE(UInt32(0x0001_0000), at: 24)
        b.putBE(maxTableEntries, at: 28)
        b.putBE(blockSize, at: 32)
        b.putBE(VHDFooter.checksum(b, skipping: 36..<40), at: 36)
        return b
    }

    static func decode(_ b: Bytes, path: String) throws(DiskImageError) -> VHDDynamicHeader {
        guard b.ascii(0, 8) == "cxsparse" else {
            throw DiskImageError(.corrupt, "\(path): no VHD dynamic header cookie")
        }
        guard b.getBE(UInt32.self, at: 36) == VHDFooter.checksum(b, skipping: 36..<40) else {
            throw DiskImageError(.corrupt, "\(path): the VHD dynamic header checksum is wrong")
        }
        let h = VHDDynamicHeader(
            tableOffset: b.getBE(UInt64.self, at: 16), maxTableEntries: b.getBE(UInt32.self, at: 28),
            blockSize: b.getBE(UInt32.self, at: 32))
        guard h.blockSize >= 512, h.blockSize <= 256 << 20, h.blockSize % 512 == 0 else {
            throw DiskImageError(.corrupt, "\(path): VHD block size \(h.blockSize) is invalid")
        }
        return h
    }
}

/// Writes a fixed VHD (data, then the footer; size rounded up to a whole MiB as Azure requires) or a
/// dynamic one (footer copy, header, block allocation table, blocks with their sector bitmaps, footer).
final class VHDWriter: BlockWriter {
    let file: ImageFile
    let fixed: Bool
    let blockSize: Int
    let compression: BlockCompression? = nil
    let size: UInt64
    private var footer: VHDFooter
    private var bat: [UInt32]
    /// Dynamic: blocks with their bitmaps appended after the table. Fixed: blocks at their offsets.
    private let out: AppendBuffer
    private let tableOffset: UInt64 = 1536

    /// - Parameter timestamp: the footer's creation time as a Unix time (now when nil).
    init(file: ImageFile, virtualSize: UInt64, fixed: Bool, timestamp: UInt64?) throws(DiskImageError) {
        self.file = file
        self.fixed = fixed
        size = fixed ? virtualSize.roundedUp(to: 1 << 20) : virtualSize.roundedUp(to: 512)
        guard size <= 2040 << 30 else {
            throw DiskImageError(.invalidArgument, "a VHD holds at most 2040 GiB, \(virtualSize) bytes asked")
        }
        if fixed {
            blockSize = 1 << 20
            footer = VHDFooter.make(size: size, type: VHDFooter.fixedType, dataOffset: UInt64.max, timestamp: timestamp)
            bat = []
            try file.truncate(to: size)
            out = try AppendBuffer(file: file, position: 0)
        } else {
            blockSize = 2 << 20
            footer = VHDFooter.make(size: size, type: VHDFooter.dynamicType, dataOffset: 512, timestamp: timestamp)
            bat = Array(repeating: UInt32.max, count: Int((size + UInt64(blockSize) - 1) / UInt64(blockSize)))
            let batBytes = UInt64(bat.count * 4).roundedUp(to: 512)
            out = try AppendBuffer(file: file, position: tableOffset + batBytes)
        }
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        let offset = index * UInt64(blockSize)
        if fixed {
            let length = Int(min(UInt64(blockSize), size - offset))
            try out.skip(to: offset)
            try out.append(UnsafeRawBufferPointer(rebasing: data[0..<length]))
            return
        }
        // Sector bitmap (one bit per sector, padded to a sector) marks the whole block present.
        let bitmap = [UInt8](repeating: 0xFF, count: (blockSize / 512 / 8).roundedUp(to: 512))
        bat[Int(index)] = UInt32(out.position / 512)
        try out.append(bitmap)
        try out.append(data)
    }

    var storesIdentifiers: Bool { true }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        footer.uniqueID = identity.guid("vhd unique id").plainBytes
        let footerBytes = footer.encoded()
        if fixed {
            try out.skip(to: size)
            try out.append(footerBytes.storage)
            try out.flush()
            return
        }
        try out.append(footerBytes.storage)
        try out.flush()
        try file.write(footerBytes, at: 0)
        let header = VHDDynamicHeader(
            tableOffset: tableOffset, maxTableEntries: UInt32(bat.count), blockSize: UInt32(blockSize))
        try file.write(header.encoded(), at: 512)
        var table = Bytes(count: (bat.count * 4).roundedUp(to: 512))
        for i in 0..<table.count / 4 { table.putBE(i < bat.count ? bat[i] : UInt32.max, at: i * 4) }
        try file.write(table, at: tableOffset)
    }
}

/// Reads fixed and dynamic VHDs (differencing disks are refused).
final class VHDReader: DiskReader {
    let file: ImageFile
    let footer: VHDFooter
    let info: ImageInfo
    private let dynamic: VHDDynamicHeader?
    private let bat: [UInt32]
    private let fileSize: UInt64

    init(file: ImageFile) throws(DiskImageError) {
        self.file = file
        fileSize = try file.size
        guard fileSize >= 512 else {
            throw DiskImageError(.truncated, "\(file.path) is truncated: shorter than a VHD footer")
        }
        let tail = try file.readBytes(512, at: fileSize - 512)
        var parsed: VHDFooter
        if tail.ascii(0, 8) == "conectix" {
            parsed = try VHDFooter.decode(tail, path: file.path)
        } else {
            // A dynamic disk keeps a copy of the footer at offset 0; a missing tail means a cut-off file.
            let head = try VHDFooter.decode(try file.readBytes(512, at: 0), path: file.path)
            guard head.diskType != VHDFooter.dynamicType else {
                throw DiskImageError(.truncated, "\(file.path) is truncated: the VHD has no footer at its end")
            }
            parsed = head
        }
        footer = parsed
        guard parsed.currentSize <= DiskImage.maxVirtualSize else {
            throw DiskImageError(.corrupt, "\(file.path): VHD size \(parsed.currentSize) is out of range")
        }
        switch parsed.diskType {
        case VHDFooter.fixedType:
            guard fileSize - 512 >= parsed.currentSize else {
                throw DiskImageError(
                    .truncated,
                    "\(file.path) is truncated: a fixed VHD of \(parsed.currentSize) bytes needs \(parsed.currentSize + 512)"
                )
            }
            dynamic = nil
            bat = []
        case VHDFooter.dynamicType:
            guard fits(parsed.dataOffset, 1024, in: fileSize) else {
                throw DiskImageError(.truncated, "\(file.path) is truncated: no VHD dynamic header")
            }
            let header = try VHDDynamicHeader.decode(try file.readBytes(1024, at: parsed.dataOffset), path: file.path)
            let needed = (parsed.currentSize + UInt64(header.blockSize) - 1) / UInt64(header.blockSize)
            guard UInt64(header.maxTableEntries) >= needed, header.maxTableEntries <= 1 << 24 else {
                throw DiskImageError(
                    .corrupt,
                    "\(file.path): VHD block table of \(header.maxTableEntries) entries cannot map \(parsed.currentSize) bytes"
                )
            }
            guard fits(header.tableOffset, UInt64(header.maxTableEntries) * 4, in: fileSize) else {
                throw DiskImageError(
                    .truncated, "\(file.path) is truncated: the VHD block table lies past the end of the file")
            }
            let table = try file.readBytes(Int(header.maxTableEntries) * 4, at: header.tableOffset)
            bat = (0..<Int(header.maxTableEntries)).map { table.getBE(UInt32.self, at: $0 * 4) }
            dynamic = header
        case VHDFooter.differencingType:
            throw DiskImageError(.unsupported, "\(file.path): differencing VHDs are not supported")
        default:
            throw DiskImageError(.corrupt, "\(file.path): unknown VHD disk type \(parsed.diskType)")
        }
        info = ImageInfo(
            format: .vhd, subformat: dynamic == nil ? .fixed : .dynamic, virtualSize: parsed.currentSize,
            allocatedBytes: file.allocatedBytes, fileSize: fileSize, clusterSize: dynamic.map { Int($0.blockSize) })
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        guard let dynamic else {
            let inside = offset < info.virtualSize ? Int(min(UInt64(buffer.count), info.virtualSize - offset)) : 0
            if inside > 0 {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<inside]), at: offset)
            }
            if inside < buffer.count {
                UnsafeMutableRawBufferPointer(rebasing: buffer[inside...]).initializeMemory(
                    as: UInt8.self, repeating: 0)
            }
            return
        }
        let blockSize = UInt64(dynamic.blockSize)
        let bitmapBytes = UInt64(dynamic.blockSize / 512 / 8).roundedUp(to: 512)
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let inBlock = Int(position % blockSize)
            let n = min(Int(blockSize) - inBlock, buffer.count - done)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            let index = Int(position / blockSize)
            let entry = position < info.virtualSize && index < bat.count ? bat[index] : UInt32.max
            if entry == UInt32.max {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            } else {
                let host = UInt64(entry) * 512 + bitmapBytes
                guard host + blockSize <= fileSize else {
                    throw DiskImageError(
                        .truncated, "\(file.path) is truncated: VHD block \(index) lies past the end of the file")
                }
                try file.read(into: out, at: host + UInt64(inBlock))
            }
            done += n
        }
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        guard let dynamic else { return file.dataRanges(end: info.virtualSize) }
        let blockSize = UInt64(dynamic.blockSize)
        var ranges: [Range<UInt64>] = []
        for (i, entry) in bat.enumerated() where entry != UInt32.max {
            let start = UInt64(i) * blockSize
            if start >= info.virtualSize { break }
            ranges.append(start..<min(start + blockSize, info.virtualSize))
        }
        return mergeRanges(ranges)
    }
}
