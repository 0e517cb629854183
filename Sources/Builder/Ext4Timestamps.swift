import KilnSupport

/// Clamps every inode's times in an ext2/3/4 file system to SOURCE_DATE_EPOCH, in place.
///
/// `mke2fs -d` (e2fsprogs 1.47.0, the builder guest's) copies each file's access, change and
/// modification times from the tree it reads; the change time is always the moment the build wrote
/// the file. Here every inode gets its modification time clamped to the epoch as its access and
/// change time too, and its creation time clamped; nanoseconds become 0. With metadata_csum the
/// inode's checksum is computed anew. Layouts: the ext4 disk layout document (kernel.org,
/// "ext4 Data Structures and Algorithms": superblock, block group descriptors, inode table); every
/// field is little-endian.
struct Ext4Timestamps {
    let region: DiskRegion
    let epoch: Int64

    // Superblock (at byte 1024 of the file system).
    private static let magic: UInt16 = 0xEF53
    private static let incompat64Bit: UInt32 = 0x80
    private static let incompatCsumSeed: UInt32 = 0x2000
    private static let roCompatMetadataCsum: UInt32 = 0x400
    private static let bgInodeUninit: UInt16 = 0x1

    /// How many inodes changed.
    @discardableResult
    func apply() throws(BuilderError) -> Int {
        let sb = try region.read(1024, 1024)
        guard sb.le16(0x38) == Self.magic else { throw BuilderError("\(region.path): no ext2/3/4 superblock") }
        let blockSize = Int64(1024) << Int64(sb.le32(0x18))
        let firstDataBlock = Int64(sb.le32(0x14))
        let blocksPerGroup = Int64(sb.le32(0x20))
        let inodesPerGroup = Int(sb.le32(0x28))
        let incompat = sb.le32(0x60)
        let is64Bit = incompat & Self.incompat64Bit != 0
        var blocks = Int64(sb.le32(0x04))
        if is64Bit { blocks |= Int64(sb.le32(0x150)) << 32 }
        let inodeSize = sb.le32(0x4C) == 0 ? 128 : Int(sb.le16(0x58))
        let descriptorSize = is64Bit ? Int(sb.le16(0xFE)) : 32
        let checksummed = sb.le32(0x64) & Self.roCompatMetadataCsum != 0
        let seed =
            incompat & Self.incompatCsumSeed != 0
            ? sb.le32(0x270) : CRC32C.update(~0, sb[0x68..<0x78])
        guard blocksPerGroup > 0, inodesPerGroup > 0, inodeSize >= 128, descriptorSize >= 32 else {
            throw BuilderError("\(region.path): implausible ext4 superblock")
        }

        let groups = Int((blocks - firstDataBlock + blocksPerGroup - 1) / blocksPerGroup)
        let descriptors = try region.read((firstDataBlock + 1) * blockSize, groups * descriptorSize)
        var changed = 0
        for group in 0..<groups {
            let d = group * descriptorSize
            if descriptors.le16(d + 0x12) & Self.bgInodeUninit != 0 { continue }
            var table = Int64(descriptors.le32(d + 0x08))
            if descriptorSize >= 64 { table |= Int64(descriptors.le32(d + 0x28)) << 32 }
            let bytes = try region.read(table * blockSize, inodesPerGroup * inodeSize)
            for index in 0..<inodesPerGroup {
                let offset = index * inodeSize
                var inode = Array(bytes[offset..<offset + inodeSize])
                guard inode.le16(0) != 0 else { continue }  // i_mode 0: not in use
                guard clamp(&inode) else { continue }
                if checksummed {
                    setChecksum(&inode, number: UInt32(group * inodesPerGroup + index + 1), seed: seed)
                }
                try region.write(inode, at: table * blockSize + Int64(offset))
                changed += 1
            }
        }
        return changed
    }

    /// Sets the times; false when they already were what they become.
    private func clamp(_ inode: inout [UInt8]) -> Bool {
        let before = inode
        let extraEnd = inode.count > 128 ? 128 + Int(inode.le16(0x80)) : 128
        func time(_ at: Int, extra: Int) -> Int64 {
            let seconds = Int64(Int32(bitPattern: inode.le32(at)))
            guard extra + 4 <= extraEnd else { return seconds }
            return seconds + (Int64(inode.le32(extra) & 3) << 32)
        }
        func set(_ value: Int64, _ at: Int, extra: Int) {
            inode.putLE32(UInt32(truncatingIfNeeded: value), at: at)
            // The extra field: nanoseconds << 2, then the epoch bits above 32 bits of seconds.
            if extra + 4 <= extraEnd {
                let epochBits = (value - Int64(Int32(truncatingIfNeeded: value))) >> 32
                inode.putLE32(UInt32(truncatingIfNeeded: epochBits) & 3, at: extra)
            }
        }
        let modified = min(time(0x10, extra: 0x88), epoch)
        set(modified, 0x08, extra: 0x8C)  // access
        set(modified, 0x0C, extra: 0x84)  // change
        set(modified, 0x10, extra: 0x88)  // modification
        if 0x94 + 4 <= extraEnd {
            set(min(time(0x90, extra: 0x94), epoch), 0x90, extra: 0x94)  // creation
        }
        return inode != before
    }

    /// The inode's checksum (`ext2fs_inode_csum`): CRC-32C from the file system's seed over the
    /// inode number, its generation, and the whole inode with both checksum halves zero.
    private func setChecksum(_ inode: inout [UInt8], number: UInt32, seed: UInt32) {
        let hasHigh = inode.count > 128 && inode.le16(0x80) >= 4
        inode.putLE16(0, at: 0x7C)
        if hasHigh { inode.putLE16(0, at: 0x82) }
        var crc = CRC32C.update(seed, le32: number)
        crc = CRC32C.update(crc, le32: inode.le32(0x64))
        crc = CRC32C.update(crc, inode)
        inode.putLE16(UInt16(crc & 0xFFFF), at: 0x7C)
        if hasHigh { inode.putLE16(UInt16(crc >> 16), at: 0x82) }
    }
}
