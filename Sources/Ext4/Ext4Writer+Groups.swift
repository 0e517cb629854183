import KilnSupport

extension Ext4Writer {
    /// Bitmaps, group descriptors and superblocks ("ext4 Data Structures and Algorithms": Super Block,
    /// Block Group Descriptors, Block and inode Bitmaps), the primary superblock last.
    func writeGroups(journalRoot: [UInt8]) throws(Ext4Error) -> Summary {
        let blockSize = Ext4Geometry.blockSize
        let perGroup = geometry.inodesPerGroup
        var descriptors = [UInt8](repeating: 0, count: geometry.descriptorBlocks * blockSize)
        var freeBlocks: Int64 = 0
        var freeInodes = 0
        var directoriesByGroup = [Int](repeating: 0, count: geometry.groupCount)
        for (index, inode) in inodes.enumerated() where inode.isDirectory {
            directoriesByGroup[index / perGroup] += 1
        }

        for group in 0..<geometry.groupCount {
            // Block bitmap: metadata and everything below the allocator's cursor; past the end of
            // a short last group, every bit set.
            let start = geometry.groupStart(group)
            let count = geometry.blocksInGroup(group)
            var blockBitmap = [UInt8](repeating: 0, count: blockSize)
            var used = 0
            let span = start..<start + Int64(count)
            for range in geometry.metadata + [0..<allocator.next] where range.overlaps(span) {
                let lower = Int(max(range.lowerBound, start) - start)
                let upper = Int(min(range.upperBound, span.upperBound) - start)
                Self.setBits(&blockBitmap, lower..<upper)
            }
            used = Self.countBits(blockBitmap, 0..<count)
            Self.setBits(&blockBitmap, count..<Ext4Geometry.blocksPerGroup)
            freeBlocks += Int64(count - used)

            let inUse = max(0, min(perGroup, inodes.count - group * perGroup))
            var inodeBitmap = [UInt8](repeating: 0, count: blockSize)
            Self.setBits(&inodeBitmap, 0..<inUse)
            Self.setBits(&inodeBitmap, perGroup..<blockSize * 8)
            freeInodes += perGroup - inUse

            try device.write(blockBitmap, at: geometry.blockBitmaps[group] * Int64(blockSize))
            try device.write(inodeBitmap, at: geometry.inodeBitmaps[group] * Int64(blockSize))

            var descriptor = [UInt8](repeating: 0, count: Ext4Geometry.descriptorSize)
            Self.putSplit(geometry.blockBitmaps[group], &descriptor, low: 0x00, high: 0x20)
            Self.putSplit(geometry.inodeBitmaps[group], &descriptor, low: 0x04, high: 0x24)
            Self.putSplit(geometry.inodeTables[group], &descriptor, low: 0x08, high: 0x28)
            Self.putSplit16(UInt32(count - used), &descriptor, low: 0x0C, high: 0x2C)
            Self.putSplit16(UInt32(perGroup - inUse), &descriptor, low: 0x0E, high: 0x2E)
            Self.putSplit16(UInt32(directoriesByGroup[group]), &descriptor, low: 0x10, high: 0x30)
            descriptor.putLE16(0x4, at: 0x12)  // bg_flags: EXT4_BG_INODE_ZEROED (the table was cleared)
            Self.putSplit16(UInt32(perGroup - inUse), &descriptor, low: 0x1C, high: 0x32)  // bg_itable_unused
            let blockSum = CRC32C.update(checksumSeed, blockBitmap, 0..<Ext4Geometry.blocksPerGroup / 8)
            let inodeSum = CRC32C.update(checksumSeed, inodeBitmap, 0..<perGroup / 8)
            Self.putSplit16(blockSum, &descriptor, low: 0x18, high: 0x38)
            Self.putSplit16(inodeSum, &descriptor, low: 0x1A, high: 0x3A)
            // bg_checksum: the low 16 bits of CRC-32C over the group number and the descriptor.
            var crc = CRC32C.update(checksumSeed, le32: UInt32(group))
            crc = CRC32C.update(crc, descriptor, 0..<descriptor.count)
            descriptor.putLE16(UInt16(crc & 0xFFFF), at: 0x1E)
            descriptors.put(descriptor, at: group * Ext4Geometry.descriptorSize)
        }

        let superblock = makeSuperblock(freeBlocks: freeBlocks, freeInodes: freeInodes, journalRoot: journalRoot)
        for group in (0..<geometry.groupCount).reversed() where Ext4Geometry.hasSuperblock(group) {
            let start = geometry.groupStart(group) * Int64(blockSize)
            try device.write(descriptors, at: start + Int64(blockSize))
            var copy = superblock
            copy.putLE16(UInt16(truncatingIfNeeded: group), at: 0x5A)  // s_block_group_nr
            copy.putLE32(CRC32C.update(~0, copy, 0..<0x3FC), at: 0x3FC)
            // The primary sits 1024 bytes in (after the boot sector); a backup at its block's start.
            try device.write(copy, at: group == 0 ? 1024 : start)
        }
        return Summary(
            blocks: geometry.blockCount, freeBlocks: freeBlocks, inodes: geometry.inodeCount, freeInodes: freeInodes)
    }

    private func makeSuperblock(freeBlocks: Int64, freeInodes: Int, journalRoot: [UInt8]) -> [UInt8] {
        var sb = [UInt8](repeating: 0, count: 1024)
        let blocks = geometry.blockCount
        let reserved = blocks * Int64(options.reservedPercent) / 100
        let now = UInt32(truncatingIfNeeded: epoch)
        sb.putLE32(UInt32(geometry.inodeCount), at: 0x00)
        Self.putSplit(blocks, &sb, low: 0x04, high: 0x150)
        Self.putSplit(reserved, &sb, low: 0x08, high: 0x154)
        Self.putSplit(freeBlocks, &sb, low: 0x0C, high: 0x158)
        sb.putLE32(UInt32(freeInodes), at: 0x10)
        sb.putLE32(0, at: 0x14)  // s_first_data_block: 0 with 4 KiB blocks
        sb.putLE32(2, at: 0x18)  // s_log_block_size: 1024 << 2
        sb.putLE32(2, at: 0x1C)  // s_log_cluster_size
        sb.putLE32(UInt32(Ext4Geometry.blocksPerGroup), at: 0x20)
        sb.putLE32(UInt32(Ext4Geometry.blocksPerGroup), at: 0x24)  // clusters per group
        sb.putLE32(UInt32(geometry.inodesPerGroup), at: 0x28)
        sb.putLE32(now, at: 0x30)  // s_wtime
        sb.putLE16(0xFFFF, at: 0x36)  // s_max_mnt_count: -1, no periodic check
        sb.putLE16(0xEF53, at: 0x38)
        sb.putLE16(1, at: 0x3A)  // s_state: clean
        sb.putLE16(1, at: 0x3C)  // s_errors: continue
        sb.putLE32(now, at: 0x40)  // s_lastcheck
        sb.putLE32(1, at: 0x4C)  // s_rev_level: dynamic
        sb.putLE32(Self.firstInode, at: 0x54)
        sb.putLE16(UInt16(Ext4Geometry.inodeSize), at: 0x58)
        // has_journal, ext_attr, dir_index
        sb.putLE32(0x4 | 0x8 | 0x20, at: 0x5C)
        // filetype, extents, 64bit, flex_bg
        sb.putLE32(0x2 | 0x40 | 0x80 | 0x200, at: 0x60)
        // sparse_super, large_file, huge_file, dir_nlink, extra_isize, metadata_csum
        sb.putLE32(0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x400, at: 0x64)
        sb.put(Self.bytes(of: options.uuid), at: 0x68)
        sb.put(Array(options.label.utf8), at: 0x78)
        sb.putLE32(UInt32(Self.journalInode), at: 0xE0)
        let seed = Self.bytes(of: options.hashSeed)
        for word in 0..<4 {
            // s_hash_seed is four 32-bit words; mke2fs stores the UUID's bytes in order.
            sb.put(seed[word * 4..<word * 4 + 4], at: 0xEC + word * 4)
        }
        sb[0xFC] = 1  // s_def_hash_version: half_md4
        sb[0xFD] = 1  // s_jnl_backup_type: the journal inode's i_block and size in s_jnl_blocks
        sb.putLE16(UInt16(Ext4Geometry.descriptorSize), at: 0xFE)
        sb.putLE32(0x4 | 0x8, at: 0x100)  // s_default_mount_opts: user_xattr, acl
        sb.putLE32(now, at: 0x108)  // s_mkfs_time
        let journal = inodes[Int(Self.journalInode) - 1]
        sb.put(journalRoot, at: 0x10C)  // s_jnl_blocks: i_block, then the size's high and low words
        sb.putLE32(UInt32(truncatingIfNeeded: journal.size >> 32), at: 0x148)
        sb.putLE32(UInt32(truncatingIfNeeded: journal.size), at: 0x14C)
        sb.putLE16(32, at: 0x15C)  // s_min_extra_isize
        sb.putLE16(32, at: 0x15E)  // s_want_extra_isize
        // s_flags: signed directory hash, what mke2fs records on x86; fixed so the bytes do not
        // depend on the building host.
        sb.putLE32(0x1, at: 0x160)
        sb[0x174] = UInt8(Ext4Geometry.logGroupsPerFlex)
        sb[0x175] = 1  // s_checksum_type: crc32c
        return sb
    }

    static func setBits(_ bitmap: inout [UInt8], _ range: Range<Int>) {
        var bit = range.lowerBound
        while bit < range.upperBound, bit % 8 != 0 {
            bitmap[bit / 8] |= 1 << UInt8(bit % 8)
            bit += 1
        }
        while bit + 8 <= range.upperBound {
            bitmap[bit / 8] = 0xFF
            bit += 8
        }
        while bit < range.upperBound {
            bitmap[bit / 8] |= 1 << UInt8(bit % 8)
            bit += 1
        }
    }

    static func countBits(_ bitmap: [UInt8], _ range: Range<Int>) -> Int {
        var count = 0
        for bit in range where bitmap[bit / 8] & (1 << UInt8(bit % 8)) != 0 { count += 1 }
        return count
    }

    /// A 64-bit value as a low 32-bit field and a high one (64bit feature).
    static func putSplit(_ value: Int64, _ bytes: inout [UInt8], low: Int, high: Int) {
        bytes.putLE32(UInt32(truncatingIfNeeded: value), at: low)
        bytes.putLE32(UInt32(truncatingIfNeeded: value >> 32), at: high)
    }

    /// A 32-bit value as two 16-bit fields.
    static func putSplit16(_ value: UInt32, _ bytes: inout [UInt8], low: Int, high: Int) {
        bytes.putLE16(UInt16(truncatingIfNeeded: value), at: low)
        bytes.putLE16(UInt16(truncatingIfNeeded: value >> 16), at: high)
    }
}
