import Foundation

/// Reads qcow2 v2 and v3 images: standard, zero and zlib-compressed clusters, and backing files.
final class Qcow2Reader: DiskReader {
    let file: ImageFile
    let header: Qcow2Header
    let info: ImageInfo
    let backing: (any DiskReader)?
    private let l1: [UInt64]
    private let clusterSize: Int
    private let l2Entries: Int
    private let fileSize: UInt64
    private var l2Cache: [Int: [UInt64]] = [:]
    private var compressedScratch: [UInt8] = []

    /// The largest L1 table read (qemu's QCOW_MAX_L1_SIZE, 32 MiB): 2 PiB with 64 KiB clusters.
    static let maxL1Entries: UInt32 = 4 << 20
    /// Backing file format name (qcow2.txt, "Header extensions").
    static let backingFormatExtension: UInt32 = 0xE279_2ACA

    init(file: ImageFile, options: OpenOptions, depth: Int) throws(DiskImageError) {
        self.file = file
        let path = file.path
        fileSize = try file.size
        guard fileSize >= 104 else {
            throw DiskImageError(.truncated, "\(path) is truncated: shorter than a qcow2 header")
        }
        let h = try Qcow2Header.decode(try file.readBytes(104, at: 0), path: path)
        try h.checkRanges(fileSize: fileSize, path: path)
        header = h
        clusterSize = h.clusterSize
        l2Entries = clusterSize / 8
        let table = try file.readBytes(Int(h.l1Size) * 8, at: h.l1TableOffset)
        l1 = (0..<Int(h.l1Size)).map { table.getBE(UInt64.self, at: $0 * 8) }

        var backingName: String?
        var backingFormat: String?
        var backingReader: (any DiskReader)?
        if h.backingFileOffset != 0 {
            let name = try file.readBytes(Int(h.backingFileSize), at: h.backingFileOffset).ascii(
                0, Int(h.backingFileSize))
            backingName = name
            backingFormat = try Qcow2Reader.extensions(file, header: h, fileSize: fileSize)[
                Qcow2Reader.backingFormatExtension
            ].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if options.allowBacking {
                guard depth < 16 else {
                    throw DiskImageError(.corrupt, "\(path): backing file chain is deeper than 16")
                }
                backingReader = try DiskImage.openBacking(
                    name, recorded: backingFormat, of: path, options: options, depth: depth + 1)
            }
        }
        backing = backingReader
        info = ImageInfo(
            format: .qcow2, virtualSize: h.size, allocatedBytes: file.allocatedBytes, fileSize: fileSize,
            clusterSize: clusterSize, backingFile: backingName, backingFormat: backingFormat,
            backingFollowed: backingReader != nil)
    }

    /// The header extensions (qcow2.txt, "Header extensions"), which lie between the header and the
    /// end of the first cluster (or the backing file name, when that comes first), by type.
    static func extensions(_ file: ImageFile, header h: Qcow2Header, fileSize: UInt64) throws(DiskImageError)
        -> [UInt32: [UInt8]]
    {
        var end = min(UInt64(h.clusterSize), fileSize)
        if h.backingFileOffset > UInt64(h.headerLength) { end = min(end, h.backingFileOffset) }
        guard end > UInt64(h.headerLength) else { return [:] }
        let area = try file.readBytes(Int(end - UInt64(h.headerLength)), at: UInt64(h.headerLength))
        var found: [UInt32: [UInt8]] = [:]
        var at = 0
        while at + 8 <= area.count {
            let type = area.getBE(UInt32.self, at: at)
            let length = Int(area.getBE(UInt32.self, at: at + 4))
            if type == 0 { break }
            guard length <= area.count - at - 8 else {
                throw DiskImageError(
                    .corrupt, "\(file.path): qcow2 header extension 0x\(String(type, radix: 16)) is too long")
            }
            found[type] = area.slice(at + 8, length)
            at += 8 + length.roundedUp(to: 8)
        }
        return found
    }

    private func l2Table(_ index: Int) throws(DiskImageError) -> [UInt64]? {
        let entry = l1[index] & Qcow2Entry.offsetMask
        if entry == 0 { return nil }
        if let cached = l2Cache[index] { return cached }
        guard entry % UInt64(clusterSize) == 0, entry + UInt64(clusterSize) <= fileSize else {
            throw DiskImageError(
                .truncated, "\(file.path) is truncated or corrupt: L2 table at \(entry) lies past the end of the file")
        }
        let bytes = try file.readBytes(clusterSize, at: entry)
        let table = (0..<l2Entries).map { bytes.getBE(UInt64.self, at: $0 * 8) }
        if l2Cache.count >= 64 { l2Cache.removeAll(keepingCapacity: true) }
        l2Cache[index] = table
        return table
    }

    private func l2Entry(cluster: UInt64) throws(DiskImageError) -> UInt64 {
        let l1Index = Int(cluster / UInt64(l2Entries))
        guard let table = try l2Table(l1Index) else { return 0 }
        return table[Int(cluster % UInt64(l2Entries))]
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let inCluster = Int(position % UInt64(clusterSize))
            let n = min(clusterSize - inCluster, buffer.count - done)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            if position >= header.size {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            } else {
                try readCluster(position / UInt64(clusterSize), from: inCluster, into: out)
            }
            done += n
        }
    }

    private func readCluster(_ cluster: UInt64, from inCluster: Int, into out: UnsafeMutableRawBufferPointer)
        throws(DiskImageError)
    {
        let entry = try l2Entry(cluster: cluster)
        if entry & Qcow2Entry.compressed != 0 {
            // Compressed cluster descriptor (qcow2.txt): x = 62 - (cluster_bits - 8) offset bits,
            // then the number of additional 512-byte sectors.
            let x = 62 - (UInt64(header.clusterBits) - 8)
            let hostOffset = entry & ((1 << x) - 1)
            let sectors = ((entry & ~Qcow2Entry.compressed & ~Qcow2Entry.copied) >> x) + 1
            let length = Int(sectors * 512 - (hostOffset & 511))
            guard hostOffset < fileSize else {
                throw DiskImageError(
                    .truncated, "\(file.path) is truncated: compressed cluster at \(hostOffset) lies past the end")
            }
            let input = try file.readPaddedBytes(length, at: hostOffset)
            if compressedScratch.count != clusterSize { compressedScratch = [UInt8](repeating: 0, count: clusterSize) }
            let ok = input.withUnsafeBytes { inRaw in
                compressedScratch.withUnsafeMutableBytes { outRaw in
                    Inflate.inflate(inRaw, into: outRaw, zlibHeader: false)
                }
            }
            guard ok else {
                throw DiskImageError(.corrupt, "\(file.path): compressed cluster \(cluster) does not inflate")
            }
            compressedScratch.withUnsafeBytes { raw in
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[inCluster..<(inCluster + out.count)]))
            }
            return
        }
        let hostOffset = entry & Qcow2Entry.offsetMask
        if header.version >= 3 && entry & Qcow2Entry.zero != 0 {
            out.initializeMemory(as: UInt8.self, repeating: 0)
        } else if hostOffset == 0 {
            if let backing {
                try backing.read(into: out, at: cluster * UInt64(clusterSize) + UInt64(inCluster))
            } else if let name = info.backingFile {
                throw DiskImageError(
                    .backingFile,
                    "\(file.path) reads through backing file '\(name)', which kiln does not open unless asked "
                        + "(--allow-backing: only a file beside the image, of the format the image records)")
            } else {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
        } else {
            guard hostOffset + UInt64(clusterSize) <= fileSize.roundedUp(to: UInt64(clusterSize)) else {
                throw DiskImageError(
                    .truncated, "\(file.path) is truncated: cluster at \(hostOffset) lies past the end of the file")
            }
            try file.read(into: out, at: hostOffset + UInt64(inCluster))
        }
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        func add(_ range: Range<UInt64>) {
            if let last = ranges.last, last.upperBound == range.lowerBound {
                ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
            } else {
                ranges.append(range)
            }
        }
        let size = UInt64(clusterSize)
        for l1Index in 0..<l1.count {
            guard let table = try l2Table(l1Index) else { continue }
            for (i, entry) in table.enumerated() {
                let isZero = header.version >= 3 && entry & Qcow2Entry.zero != 0 && entry & Qcow2Entry.compressed == 0
                let allocated = entry & Qcow2Entry.compressed != 0 || (entry & Qcow2Entry.offsetMask != 0)
                guard allocated && !isZero else { continue }
                let start = (UInt64(l1Index) * UInt64(l2Entries) + UInt64(i)) * size
                if start >= header.size { break }
                add(start..<min(start + size, header.size))
            }
        }
        if let backing {
            // Reads through unallocated clusters reach the backing file; the union is a safe superset.
            let own = ranges
            let under = try backing.dataRanges().compactMap { r -> Range<UInt64>? in
                let upper = min(r.upperBound, header.size)
                return r.lowerBound < upper ? r.lowerBound..<upper : nil
            }
            return mergeRanges(own + under)
        }
        return ranges
    }
}

/// Sorts and merges overlapping or touching ranges.
func mergeRanges(_ input: [Range<UInt64>]) -> [Range<UInt64>] {
    var merged: [Range<UInt64>] = []
    for r in input.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
        if let last = merged.last, r.lowerBound <= last.upperBound {
            merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
        } else {
            merged.append(r)
        }
    }
    return merged
}
