/// Writes a monolithicSparse or streamOptimized VMDK in one pass.
///
/// monolithicSparse: header, descriptor, redundant and primary grain directories with all their grain
/// tables reserved up front, then grains; each grain table is filled in once its grains are written.
/// streamOptimized: header, descriptor, then compressed grains with markers, each non-empty grain table
/// after its grains, the grain directory, a footer and an end-of-stream marker.
final class VMDKWriter: BlockWriter {
    let file: ImageFile
    let streamOptimized: Bool
    let blockSize = 64 << 10
    let compression: BlockCompression?
    private let sectors: UInt64
    private let grainSectors: UInt64 = 128
    private let gtEntries = 512
    private let gtCount: Int
    private let out: AppendBuffer
    private var header: VMDKHeader
    private var descriptor: VMDKDescriptor
    private let descriptorSectors: UInt64 = 20
    private var gd: [UInt32]
    private var currentGT: Int?
    private var gt: [UInt32]
    private var gtHasGrains = false

    init(file: ImageFile, virtualSize: UInt64, streamOptimized: Bool, adapter: String, extentName: String)
        throws(DiskImageError)
    {
        self.file = file
        self.streamOptimized = streamOptimized
        compression = streamOptimized ? .zlib : nil
        sectors = virtualSize.roundedUp(to: 512) / 512
        let grains = Int((sectors + grainSectors - 1) / grainSectors)
        gtCount = max(1, (grains + gtEntries - 1) / gtEntries)
        guard sectors <= 0xFFFF_FFFF * 128 else {
            throw DiskImageError(
                .invalidArgument, "a VMDK sparse extent holds at most 2 TiB, \(virtualSize) bytes asked")
        }
        gd = Array(repeating: 0, count: gtCount)
        gt = Array(repeating: 0, count: gtEntries)

        // The content ID is derived from the image's identity in `finish`, which writes the descriptor again.
        descriptor = VMDKDescriptor(
            createType: streamOptimized ? "streamOptimized" : "monolithicSparse", sectors: sectors,
            extentName: extentName, adapter: adapter, cid: 1)

        let gdSectors = UInt64(gtCount * 4).roundedUp(to: 512) / 512
        let gtSectors = UInt64(gtCount * gtEntries * 4) / 512
        if streamOptimized {
            header = VMDKHeader(
                version: 3,
                flags: VMDKHeader.flagNewlineTest | VMDKHeader.flagCompressed | VMDKHeader.flagMarkers,
                capacity: sectors, descriptorOffset: 1, descriptorSize: descriptorSectors, rgdOffset: 0,
                gdOffset: VMDKHeader.gdAtEnd, overHead: 128, compressAlgorithm: 1)
        } else {
            let rgd = 1 + descriptorSectors
            let gdOffset = rgd + gdSectors + gtSectors
            let overHead = (gdOffset + gdSectors + gtSectors).roundedUp(to: grainSectors)
            header = VMDKHeader(
                version: 1, flags: VMDKHeader.flagNewlineTest | VMDKHeader.flagRedundantTable, capacity: sectors,
                descriptorOffset: 1, descriptorSize: descriptorSectors, rgdOffset: rgd, gdOffset: gdOffset,
                overHead: overHead, compressAlgorithm: 0)
        }
        try file.write(header.encoded(), at: 0)
        try file.write(VMDKWriter.descriptorBytes(descriptor, sectors: descriptorSectors), at: 512)
        out = try AppendBuffer(file: file, position: header.overHead * 512)
    }

    var storesIdentifiers: Bool { true }

    private static func descriptorBytes(_ descriptor: VMDKDescriptor, sectors: UInt64) -> Bytes {
        var bytes = Bytes(count: Int(sectors) * 512)
        bytes.putASCII(descriptor.text, at: 0)
        return bytes
    }

    private func gtSector(_ index: Int, redundant: Bool) -> UInt64 {
        let gdSectors = UInt64(gtCount * 4).roundedUp(to: 512) / 512
        let base = redundant ? header.rgdOffset : header.gdOffset
        return base + gdSectors + UInt64(index * gtEntries * 4 / 512)
    }

    private func flushGT() throws(DiskImageError) {
        guard let index = currentGT else { return }
        var bytes = Bytes(count: gtEntries * 4)
        for (i, entry) in gt.enumerated() { bytes.putLE(entry, at: i * 4) }
        if streamOptimized {
            if gtHasGrains {
                try out.append(VMDKMarker.encoded(value: UInt64(gtEntries * 4 / 512), type: VMDKMarker.grainTable))
                gd[index] = UInt32(out.position / 512)
                try out.append(bytes.storage)
            }
        } else {
            // The tables live in the reserved region before the grains, apart from what `out` appends.
            try file.write(bytes, at: gtSector(index, redundant: true) * 512)
            try file.write(bytes, at: gtSector(index, redundant: false) * 512)
        }
        for i in gt.indices { gt[i] = 0 }
        gtHasGrains = false
        currentGT = nil
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        let gtIndex = Int(index / UInt64(gtEntries))
        if currentGT != gtIndex {
            try flushGT()
            currentGT = gtIndex
        }
        let sector = out.position / 512
        guard sector <= UInt64(UInt32.max) else {
            throw DiskImageError(.invalidArgument, "the VMDK grew past the 2 TiB a sparse extent can address")
        }
        if streamOptimized, let compressed {
            // Grain marker: LBA of the grain (u64) and compressed size (u32), then the data, padded to a sector.
            var marker = Bytes(count: 12)
            marker.putLE(index * grainSectors, at: 0)
            marker.putLE(UInt32(compressed.count), at: 8)
            try out.append(marker.storage)
            try out.append(compressed)
            try out.pad(to: 512)
        } else {
            try out.append(data)
        }
        gt[Int(index % UInt64(gtEntries))] = UInt32(sector)
        gtHasGrains = true
    }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        try flushGT()
        descriptor.cid = identity.uint32("vmdk content id")
        try file.write(VMDKWriter.descriptorBytes(descriptor, sectors: descriptorSectors), at: 512)
        var gdBytes = Bytes(count: (gtCount * 4).roundedUp(to: 512))
        if streamOptimized {
            for (i, entry) in gd.enumerated() { gdBytes.putLE(entry, at: i * 4) }
            try out.append(VMDKMarker.encoded(value: UInt64(gdBytes.count / 512), type: VMDKMarker.grainDirectory))
            let gdSector = out.position / 512
            try out.append(gdBytes.storage)
            var footer = header
            footer.gdOffset = gdSector
            try out.append(VMDKMarker.encoded(value: 1, type: VMDKMarker.footer))
            try out.append(footer.encoded().storage)
            try out.append(VMDKMarker.encoded(value: 0, type: VMDKMarker.endOfStream))
            try out.flush()
        } else {
            try out.flush()
            // Every grain table is reserved, so the directories point at all of them.
            for redundant in [true, false] {
                for i in 0..<gtCount { gdBytes.putLE(UInt32(gtSector(i, redundant: redundant)), at: i * 4) }
                try file.write(gdBytes, at: (redundant ? header.rgdOffset : header.gdOffset) * 512)
            }
            let end = max(out.position, header.overHead * 512)
            try file.truncate(to: end)
        }
    }
}
