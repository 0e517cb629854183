import KilnSupport

extension Ext4Writer {
    func writeMetadata() throws(Ext4Error) -> Summary {
        try data.flush()
        try writeDirectories()
        var roots: [[UInt8]] = []
        roots.reserveCapacity(inodes.count)
        for index in inodes.indices {
            let number = UInt32(index + 1)
            roots.append(try extentRoot(number))
            if !inodes[index].blockAttributes.isEmpty {
                let block = try allocator.allocate()
                let bytes = Ext4ExtendedAttributes.block(
                    inodes[index].blockAttributes, number: block, fileSystemSeed: checksumSeed)
                try data.append(bytes, at: block)
                inodes[index].attributeBlock = block
                inodes[index].metadataBlocks += 1
            }
        }
        try data.flush()
        try writeInodeTables(roots: roots)
        return try writeGroups(journalRoot: roots[Int(Self.journalInode) - 1])
    }

    /// Every directory, in inode order, as linear blocks with their entries sorted by name.
    private func writeDirectories() throws(Ext4Error) {
        for number in children.keys.sorted() {
            // A hashed directory orders its entries by hash (names break ties); only a linear one
            // needs them in name order.
            let entries = children[number] ?? []
            let parent = parents[number] ?? Self.rootInode
            let seed = Ext4Inode.checksumSeed(number: number, fileSystemSeed: checksumSeed)
            let blocks: [[UInt8]]
            if let hashed = Ext4HashTree.blocks(
                number: number, parent: parent, entries: entries, checksumSeed: seed, hashSeed: hashSeedWords)
            {
                blocks = hashed
                inodes[Int(number) - 1].flags |= Ext4HashTree.indexFlag
            } else {
                blocks = Ext4DirectoryBuilder.blocks(
                    number: number, parent: parent, entries: entries.sorted { Ext4Bytes.precedes($0.name, $1.name) },
                    // lost+found gets 16 KiB, room for what e2fsck reconnects without allocating, as mke2fs.
                    minimumBlocks: number == Self.lostAndFoundInode ? 4 : 1, seed: seed)
            }
            var extents: [Ext4Extent] = []
            for (logical, bytes) in blocks.enumerated() {
                let block = try allocator.allocate()
                Ext4BlockAllocator.append(block, logical: UInt32(logical), to: &extents)
                try data.append(bytes, at: block)
            }
            inodes[Int(number) - 1].extents = extents
            inodes[Int(number) - 1].size = UInt64(blocks.count * Ext4Geometry.blockSize)
        }
    }

    /// `s_hash_seed` as the hash reads it: four little-endian words.
    private var hashSeedWords: [UInt32] {
        let bytes = Self.bytes(of: options.hashSeed)
        return (0..<4).map { bytes.le32($0 * 4) }
    }

    /// `i_block` of an inode: its own bytes, or the root of an extent tree whose lower levels are
    /// written to blocks of their own.
    private func extentRoot(_ number: UInt32) throws(Ext4Error) -> [UInt8] {
        let index = Int(number) - 1
        if let inline = inodes[index].inlineBlock { return inline }
        let extents = inodes[index].extents
        guard inodes[index].flags & Ext4Inode.extentsFlag != 0 else { return [UInt8](repeating: 0, count: 60) }
        if extents.count <= Ext4ExtentTree.entriesInInode { return Ext4ExtentTree.root(leaves: extents) }
        let seed = Ext4Inode.checksumSeed(number: number, fileSystemSeed: checksumSeed)
        let perBlock = Ext4ExtentTree.entriesInBlock
        var level: [Ext4ExtentTree.Index] = []
        for start in stride(from: 0, to: extents.count, by: perBlock) {
            let leaves = extents[start..<min(start + perBlock, extents.count)]
            let block = try allocator.allocate()
            try data.append(Ext4ExtentTree.block(leaves: leaves, seed: seed), at: block)
            level.append(Ext4ExtentTree.Index(logical: leaves[leaves.startIndex].logical, block: block))
        }
        var depth = 1
        while level.count > Ext4ExtentTree.entriesInInode {
            var above: [Ext4ExtentTree.Index] = []
            for start in stride(from: 0, to: level.count, by: perBlock) {
                let indexes = level[start..<min(start + perBlock, level.count)]
                let block = try allocator.allocate()
                try data.append(Ext4ExtentTree.block(indexes: indexes, depth: depth, seed: seed), at: block)
                above.append(Ext4ExtentTree.Index(logical: indexes[indexes.startIndex].logical, block: block))
            }
            inodes[index].metadataBlocks += Int64(above.count)
            level = above
            depth += 1
        }
        inodes[index].metadataBlocks += Int64((extents.count + perBlock - 1) / perBlock)
        return Ext4ExtentTree.root(indexes: level, depth: depth)
    }

    /// The inode tables up to the last inode in use; the rest of each table was cleared with the region.
    private func writeInodeTables(roots: [[UInt8]]) throws(Ext4Error) {
        let perGroup = geometry.inodesPerGroup
        for group in 0..<geometry.groupCount {
            let first = group * perGroup
            guard first < inodes.count else { break }
            let count = min(perGroup, inodes.count - first)
            var table = [UInt8]()
            table.reserveCapacity(count * Ext4Geometry.inodeSize)
            for index in first..<first + count {
                table += encodedInode(index, root: roots[index])
            }
            try device.write(table, at: geometry.inodeTables[group] * Int64(Ext4Geometry.blockSize))
        }
    }

    private func encodedInode(_ index: Int, root: [UInt8]) -> [UInt8] {
        let number = UInt32(index + 1)
        if index >= 10 || number == Self.rootInode || number == Self.journalInode {
            return inodes[index].encoded(number: number, root: root, creation: epoch, checksumSeed: checksumSeed)
        }
        // The other reserved inodes are empty, with no extra fields; the bad blocks inode (1) carries
        // the creation time, as mke2fs leaves them.
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.inodeSize)
        if number == 1 {
            for at in [0x08, 0x0C, 0x10] { bytes.putLE32(UInt32(truncatingIfNeeded: epoch), at: at) }
        }
        Ext4Inode.setChecksum(&bytes, number: number, seed: checksumSeed)
        return bytes
    }
}
