/// Writes a qcow2 v3 image in one pass: data clusters are appended in guest order, each L2 table is
/// written as soon as the data it maps is complete, and the L1 table, refcount table and refcount
/// blocks follow at the end. Memory holds one L2 table and one refcount per host cluster.
final class Qcow2Writer: BlockWriter {
    let file: ImageFile
    let virtualSize: UInt64
    let clusterBits: UInt32 = 16
    let blockSize: Int
    let compression: BlockCompression?
    private let out: AppendBuffer
    private let l2Entries: Int
    private var l1: [UInt64]
    private var currentL2Index: Int?
    private var currentL2: [UInt64]
    /// Refcount of every host cluster, indexed by host cluster number.
    private var refcounts: [UInt16] = [1]

    init(file: ImageFile, virtualSize: UInt64, compressed: Bool) throws(DiskImageError) {
        self.file = file
        // QEMU reads a qcow2's size in whole 512-byte sectors, dropping a partial one: round up, as
        // qemu-img convert does, so that the last bytes of an odd-sized raw input stay readable.
        self.virtualSize = virtualSize.roundedUp(to: 512)
        blockSize = 1 << Int(clusterBits)
        // qemu inflates compressed clusters with a 4 KiB window (windowBits -12).
        compression = compressed ? .rawDeflate(windowBits: 12) : nil
        l2Entries = blockSize / 8
        let span = UInt64(blockSize) * UInt64(l2Entries)
        l1 = Array(repeating: 0, count: Int((virtualSize + span - 1) / span))
        currentL2 = Array(repeating: 0, count: l2Entries)
        out = try AppendBuffer(file: file, position: UInt64(blockSize))
    }

    private var cluster: UInt64 { UInt64(blockSize) }

    private func reference(from start: UInt64, to end: UInt64) {
        let first = Int(start / cluster)
        let last = Int((end - 1) / cluster)
        if refcounts.count <= last { refcounts.append(contentsOf: repeatElement(0, count: last + 1 - refcounts.count)) }
        for c in first...last { refcounts[c] += 1 }
    }

    /// Appends a cluster-aligned run of bytes (data cluster or table) and counts its clusters.
    private func appendAligned(_ bytes: UnsafeRawBufferPointer) throws(DiskImageError) -> UInt64 {
        try out.pad(to: cluster)
        let offset = out.position
        try out.append(bytes)
        try out.pad(to: cluster)
        reference(from: offset, to: out.position)
        return offset
    }

    private func appendAligned(_ bytes: [UInt8]) throws(DiskImageError) -> UInt64 {
        try out.pad(to: cluster)
        let offset = out.position
        try out.append(bytes)
        try out.pad(to: cluster)
        reference(from: offset, to: out.position)
        return offset
    }

    private func switchL2(to index: Int) throws(DiskImageError) {
        if currentL2Index == index { return }
        try flushL2()
        currentL2Index = index
    }

    private func flushL2() throws(DiskImageError) {
        guard let index = currentL2Index else { return }
        var bytes = Bytes(count: blockSize)
        for (i, entry) in currentL2.enumerated() where entry != 0 { bytes.putBE(entry, at: i * 8) }
        let offset = try appendAligned(bytes.storage)
        l1[index] = offset | Qcow2Entry.copied
        for i in currentL2.indices { currentL2[i] = 0 }
        currentL2Index = nil
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        try switchL2(to: Int(index / UInt64(l2Entries)))
        let slot = Int(index % UInt64(l2Entries))
        if let compressed, compressed.count < blockSize {
            // Compressed clusters are packed byte by byte (qcow2.txt, "Compressed Clusters Descriptor").
            let offset = out.position
            try out.append(compressed)
            let end = offset + UInt64(compressed.count)
            let x = UInt64(62 - (clusterBits - 8))
            let extraSectors = ((end - 1) >> 9) - (offset >> 9)
            // qemu counts the reference up to the end of the last 512-byte sector.
            reference(from: offset, to: ((end - 1) >> 9 + 1) << 9)
            currentL2[slot] = Qcow2Entry.compressed | (extraSectors << x) | offset
        } else {
            let offset = try appendAligned(data)
            currentL2[slot] = offset | Qcow2Entry.copied
        }
    }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        try flushL2()
        try out.pad(to: cluster)

        var l1Bytes = Bytes(count: max(1, l1.count * 8).roundedUp(to: blockSize))
        for (i, entry) in l1.enumerated() { l1Bytes.putBE(entry, at: i * 8) }
        let l1Offset = try appendAligned(l1Bytes.storage)

        // The refcount table and blocks count themselves: find the fixed point of their sizes.
        let used = UInt64(out.position / cluster)
        let perBlock = UInt64(blockSize * 8 / 16)
        var blocks: UInt64 = 1
        var tableClusters: UInt64 = 1
        while true {
            let needBlocks = (used + tableClusters + blocks + perBlock - 1) / perBlock
            let needTable = (needBlocks * 8 + cluster - 1) / cluster
            if needBlocks == blocks && needTable == tableClusters { break }
            blocks = needBlocks
            tableClusters = needTable
        }
        let tableOffset = out.position
        let firstBlock = tableOffset + tableClusters * cluster
        reference(from: tableOffset, to: firstBlock + blocks * cluster)

        var table = Bytes(count: Int(tableClusters * cluster))
        for b in 0..<blocks { table.putBE(firstBlock + b * cluster, at: Int(b) * 8) }
        try out.append(table.storage)
        for b in 0..<Int(blocks) {
            var block = Bytes(count: blockSize)
            let first = b * Int(perBlock)
            for i in 0..<Int(perBlock) where first + i < refcounts.count {
                block.putBE(refcounts[first + i], at: i * 2)
            }
            try out.append(block.storage)
        }
        try out.flush()

        let header = Qcow2Header(
            clusterBits: clusterBits, size: virtualSize, l1Size: UInt32(l1.count), l1TableOffset: l1Offset,
            refcountTableOffset: tableOffset, refcountTableClusters: UInt32(tableClusters))
        try file.write(header.encoded(), at: 0)
    }
}
