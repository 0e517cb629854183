/// Reads hosted sparse VMDK extents: monolithicSparse and streamOptimized (compressed grains with markers).
final class VMDKReader: DiskReader {
    let file: ImageFile
    let header: VMDKHeader
    let info: ImageInfo
    private let gd: [UInt32]
    private let fileSize: UInt64
    private let grainBytes: Int
    private var gtCache: [Int: [UInt32]] = [:]
    private var grainCache: (index: UInt64, data: [UInt8])?

    init(file: ImageFile) throws(DiskImageError) {
        self.file = file
        fileSize = try file.size
        guard fileSize >= 512 else {
            throw DiskImageError(.truncated, "\(file.path) is truncated: shorter than a VMDK header")
        }
        let first = try file.readBytes(512, at: 0)
        if first.ascii(0, 21) == "# Disk DescriptorFile" {
            throw DiskImageError(
                .unsupported,
                "\(file.path) is a VMDK descriptor with separate extent files; only single-file sparse VMDKs (monolithicSparse, streamOptimized) are supported"
            )
        }
        var h = try VMDKHeader.decode(first, path: file.path)
        if h.gdOffset == VMDKHeader.gdAtEnd {
            // streamOptimized: the footer (a copy of the header with gdOffset set) is the second-to-last sector.
            guard fileSize >= 1536 else {
                throw DiskImageError(.truncated, "\(file.path) is truncated: no VMDK footer")
            }
            let marker = try file.readBytes(512, at: fileSize - 1536)
            guard marker.getLE(UInt32.self, at: 12) == VMDKMarker.footer else {
                throw DiskImageError(
                    .truncated, "\(file.path) is truncated: the streamOptimized VMDK has no footer marker")
            }
            h = try VMDKHeader.decode(try file.readBytes(512, at: fileSize - 1024), path: file.path)
        }
        header = h
        grainBytes = Int(h.grainSize) * 512
        if h.flags & VMDKHeader.flagCompressed != 0 {
            guard h.compressAlgorithm == 1, h.flags & VMDKHeader.flagMarkers != 0 else {
                throw DiskImageError(
                    .unsupported, "\(file.path): VMDK compression without deflate and markers is not supported")
            }
        }
        guard h.capacity <= DiskImage.maxVirtualSize / 512 else {
            throw DiskImageError(.corrupt, "\(file.path): VMDK capacity of \(h.capacity) sectors is out of range")
        }
        let grains = h.capacity / h.grainSize + (h.capacity % h.grainSize == 0 ? 0 : 1)
        let tables = grains / UInt64(h.numGTEsPerGT) + (grains % UInt64(h.numGTEsPerGT) == 0 ? 0 : 1)
        guard h.gdOffset <= UInt64.max / 512, fits(h.gdOffset * 512, tables * 4, in: fileSize) else {
            throw DiskImageError(
                .truncated, "\(file.path) is truncated: the VMDK grain directory lies past the end of the file")
        }
        let gtCount = Int(tables)
        let gdBytes = try file.readBytes(gtCount * 4, at: h.gdOffset * 512)
        gd = (0..<gtCount).map { gdBytes.getLE(UInt32.self, at: $0 * 4) }

        var subformat: ImageSubformat? = nil
        if h.descriptorOffset > 0 && h.descriptorSize > 0 && h.descriptorSize < 2048
            && h.descriptorOffset <= fileSize / 512
            && fits(h.descriptorOffset * 512, h.descriptorSize * 512, in: fileSize)
        {
            let text = try file.readBytes(Int(h.descriptorSize) * 512, at: h.descriptorOffset * 512)
            let trimmed = Array(text.storage.prefix { $0 != 0 })
            subformat = VMDKDescriptor.createType(in: String(decoding: trimmed, as: UTF8.self)).flatMap(
                ImageSubformat.init(rawValue:))
        }
        let compressed = h.flags & VMDKHeader.flagCompressed != 0
        info = ImageInfo(
            format: .vmdk, subformat: subformat ?? (compressed ? .streamOptimized : .monolithicSparse),
            virtualSize: h.capacity * 512, allocatedBytes: file.allocatedBytes, fileSize: fileSize,
            clusterSize: grainBytes, compressed: compressed)
    }

    private func grainTable(_ index: Int) throws(DiskImageError) -> [UInt32]? {
        let sector = UInt64(gd[index])
        if sector == 0 { return nil }
        if let cached = gtCache[index] { return cached }
        let count = Int(header.numGTEsPerGT)
        guard sector * 512 + UInt64(count * 4) <= fileSize else {
            throw DiskImageError(
                .truncated, "\(file.path) is truncated: VMDK grain table \(index) lies past the end of the file")
        }
        let bytes = try file.readBytes(count * 4, at: sector * 512)
        let table = (0..<count).map { bytes.getLE(UInt32.self, at: $0 * 4) }
        if gtCache.count >= 256 { gtCache.removeAll(keepingCapacity: true) }
        gtCache[index] = table
        return table
    }

    private func grainEntry(_ grain: UInt64) throws(DiskImageError) -> UInt32 {
        let per = UInt64(header.numGTEsPerGT)
        guard let table = try grainTable(Int(grain / per)) else { return 0 }
        return table[Int(grain % per)]
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let inGrain = Int(position % UInt64(grainBytes))
            let n = min(grainBytes - inGrain, buffer.count - done)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            let grain = position / UInt64(grainBytes)
            let entry = position >= info.virtualSize ? 0 : try grainEntry(grain)
            if entry <= 1 {
                // 0: unallocated; 1: a zeroed grain (when the zero-grain flag is set).
                out.initializeMemory(as: UInt8.self, repeating: 0)
            } else if header.flags & VMDKHeader.flagCompressed != 0 {
                let data = try compressedGrain(grain, at: UInt64(entry) * 512)
                data.withUnsafeBytes { raw in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[inGrain..<(inGrain + n)]))
                }
            } else {
                let host = UInt64(entry) * 512
                guard host + UInt64(grainBytes) <= fileSize.roundedUp(to: UInt64(grainBytes)) else {
                    throw DiskImageError(
                        .truncated, "\(file.path) is truncated: VMDK grain at \(host) lies past the end of the file")
                }
                try file.readPadded(into: out, at: host + UInt64(inGrain))
            }
            done += n
        }
    }

    private func compressedGrain(_ grain: UInt64, at host: UInt64) throws(DiskImageError) -> [UInt8] {
        if let cached = grainCache, cached.index == grain { return cached.data }
        guard host + 12 <= fileSize else {
            throw DiskImageError(
                .truncated, "\(file.path) is truncated: VMDK grain at \(host) lies past the end of the file")
        }
        let marker = try file.readBytes(12, at: host)
        let size = Int(marker.getLE(UInt32.self, at: 8))
        guard size > 0, size <= grainBytes * 2 + 1024, host + 12 + UInt64(size) <= fileSize else {
            throw DiskImageError(.corrupt, "\(file.path): VMDK compressed grain at \(host) has a bad size \(size)")
        }
        let input = try file.readBytes(size, at: host + 12)
        var output = [UInt8](repeating: 0, count: grainBytes)
        let ok = input.storage.withUnsafeBytes { i in
            output.withUnsafeMutableBytes { o in Inflate.inflate(i, into: o, zlibHeader: true, allowShort: true) }
        }
        guard ok else { throw DiskImageError(.corrupt, "\(file.path): VMDK grain \(grain) does not inflate") }
        grainCache = (grain, output)
        return output
    }

    func dataRanges() throws(DiskImageError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        let per = Int(header.numGTEsPerGT)
        for g in 0..<gd.count {
            guard let table = try grainTable(g) else { continue }
            for (i, entry) in table.enumerated() where entry > 1 {
                let start = UInt64(g * per + i) * UInt64(grainBytes)
                if start >= info.virtualSize { break }
                let range = start..<min(start + UInt64(grainBytes), info.virtualSize)
                if let last = ranges.last, last.upperBound == range.lowerBound {
                    ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    ranges.append(range)
                }
            }
        }
        return ranges
    }
}
