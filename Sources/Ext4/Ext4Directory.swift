import KilnSupport

/// One name in a directory (`ext4_dir_entry_2`).
struct Ext4DirectoryEntry {
    var name: [UInt8]
    var inode: UInt32
    var fileType: UInt8
}

/// Lays out a linear directory: entries packed in name order into blocks, each block ending in the
/// 12-byte tail that holds its checksum ("ext4 Data Structures and Algorithms": Linear (Classic)
/// Directories, Checksums).
struct Ext4DirectoryBuilder {
    static let tailSize = 12
    static let usable = Ext4Geometry.blockSize - tailSize

    private(set) var blocks: [[UInt8]] = []
    private var block = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
    private var offset = 0
    private var lastEntry = -1

    static func entryLength(nameLength: Int) -> Int { (8 + nameLength + 3) & ~3 }

    /// The blocks of a directory holding "." (`number`), ".." (`parent`) and `entries`, in at least
    /// `minimumBlocks` blocks, checksummed with the directory's inode seed.
    static func blocks(
        number: UInt32, parent: UInt32, entries: [Ext4DirectoryEntry], minimumBlocks: Int, seed: UInt32
    ) -> [[UInt8]] {
        var builder = Ext4DirectoryBuilder()
        builder.add(Ext4DirectoryEntry(name: [0x2E], inode: number, fileType: 2))
        builder.add(Ext4DirectoryEntry(name: [0x2E, 0x2E], inode: parent, fileType: 2))
        for entry in entries { builder.add(entry) }
        builder.close()
        while builder.blocks.count < minimumBlocks {
            builder.add(nil)
            builder.close()
        }
        return builder.blocks.map { sealed($0, seed: seed) }
    }

    /// Appends an entry; nil makes an empty block's single unused entry.
    private mutating func add(_ entry: Ext4DirectoryEntry?) {
        let length = Self.entryLength(nameLength: entry?.name.count ?? 0)
        if offset + length > Self.usable { close() }
        if let entry {
            block.putLE32(entry.inode, at: offset)
            block.putLE16(UInt16(length), at: offset + 4)
            block[offset + 6] = UInt8(entry.name.count)
            block[offset + 7] = entry.fileType
            block.put(entry.name, at: offset + 8)
        }
        lastEntry = offset
        offset += length
    }

    /// Ends the current block: its last entry's rec_len reaches the tail.
    private mutating func close() {
        guard lastEntry >= 0 else { return }
        block.putLE16(UInt16(Self.usable - lastEntry), at: lastEntry + 4)
        blocks.append(block)
        block = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        offset = 0
        lastEntry = -1
    }

    /// Writes the tail (`ext4_dir_entry_tail`: inode 0, rec_len 12, name_len 0, file type 0xDE) and
    /// its CRC-32C of everything before it, from the directory inode's seed.
    static func sealed(_ block: [UInt8], seed: UInt32) -> [UInt8] {
        var block = block
        block.putLE32(0, at: usable)
        block.putLE16(UInt16(tailSize), at: usable + 4)
        block[usable + 6] = 0
        block[usable + 7] = 0xDE
        block.putLE32(CRC32C.update(seed, block, 0..<usable), at: usable + 8)
        return block
    }
}
