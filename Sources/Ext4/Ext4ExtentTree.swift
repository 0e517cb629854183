import KilnSupport

/// Encodes extent tree nodes ("ext4 Data Structures and Algorithms": Extent Tree): a 12-byte header,
/// 12-byte entries, and in a block (not in the inode) a CRC-32C tail after the last possible entry.
enum Ext4ExtentTree {
    static let magic: UInt16 = 0xF30A
    static let entriesInInode = 4
    static let entriesInBlock = (Ext4Geometry.blockSize - 12 - 4) / 12

    /// An index entry: the first file block under a node and the disk block that holds the node.
    struct Index {
        var logical: UInt32
        var block: Int64
    }

    static func header(_ bytes: inout [UInt8], entries: Int, maximum: Int, depth: Int) {
        bytes.putLE16(magic, at: 0)
        bytes.putLE16(UInt16(entries), at: 2)
        bytes.putLE16(UInt16(maximum), at: 4)
        bytes.putLE16(UInt16(depth), at: 6)
        bytes.putLE32(0, at: 8)  // eh_generation
    }

    static func putLeaf(_ extent: Ext4Extent, _ bytes: inout [UInt8], at: Int) {
        bytes.putLE32(extent.logical, at: at)
        bytes.putLE16(UInt16(extent.length), at: at + 4)
        bytes.putLE16(UInt16(truncatingIfNeeded: extent.physical >> 32), at: at + 6)
        bytes.putLE32(UInt32(truncatingIfNeeded: extent.physical), at: at + 8)
    }

    static func putIndex(_ index: Index, _ bytes: inout [UInt8], at: Int) {
        bytes.putLE32(index.logical, at: at)
        bytes.putLE32(UInt32(truncatingIfNeeded: index.block), at: at + 4)
        bytes.putLE16(UInt16(truncatingIfNeeded: index.block >> 32), at: at + 8)
        bytes.putLE16(0, at: at + 10)
    }

    /// The 60-byte root in `i_block` over leaves (depth 0) or over nodes (`depth` above them).
    static func root(leaves: [Ext4Extent]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 60)
        header(&bytes, entries: leaves.count, maximum: entriesInInode, depth: 0)
        for (n, extent) in leaves.enumerated() { putLeaf(extent, &bytes, at: 12 + 12 * n) }
        return bytes
    }

    static func root(indexes: [Index], depth: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 60)
        header(&bytes, entries: indexes.count, maximum: entriesInInode, depth: depth)
        for (n, index) in indexes.enumerated() { putIndex(index, &bytes, at: 12 + 12 * n) }
        return bytes
    }

    /// A node block of leaves or (depth > 0) of indexes, with its checksum from the inode's seed.
    static func block(leaves: ArraySlice<Ext4Extent>, seed: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        header(&bytes, entries: leaves.count, maximum: entriesInBlock, depth: 0)
        for (n, extent) in leaves.enumerated() { putLeaf(extent, &bytes, at: 12 + 12 * n) }
        seal(&bytes, seed: seed)
        return bytes
    }

    static func block(indexes: ArraySlice<Index>, depth: Int, seed: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        header(&bytes, entries: indexes.count, maximum: entriesInBlock, depth: depth)
        for (n, index) in indexes.enumerated() { putIndex(index, &bytes, at: 12 + 12 * n) }
        seal(&bytes, seed: seed)
        return bytes
    }

    private static func seal(_ bytes: inout [UInt8], seed: UInt32) {
        let tail = 12 + 12 * entriesInBlock
        bytes.putLE32(CRC32C.update(seed, bytes, 0..<tail), at: tail)
    }
}
