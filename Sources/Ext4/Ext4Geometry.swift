/// Where everything that is not file data sits: block groups, their superblock backups and group
/// descriptor copies, and each flex group's bitmaps and inode tables, packed at its start as mke2fs
/// packs them ("ext4 Data Structures and Algorithms": Block Groups, Flexible Block Groups).
struct Ext4Geometry {
    static let blockSize = 4096
    static let inodeSize = 256
    static let blocksPerGroup = 32768
    static let logGroupsPerFlex = 4
    static let groupsPerFlex = 1 << logGroupsPerFlex
    static let descriptorSize = 64
    static let inodesPerBlock = blockSize / inodeSize

    let blockCount: Int64
    let groupCount: Int
    let inodesPerGroup: Int
    let descriptorBlocks: Int
    let journalBlocks: Int
    /// Per group: the first block of its block bitmap, inode bitmap and inode table.
    let blockBitmaps: [Int64]
    let inodeBitmaps: [Int64]
    let inodeTables: [Int64]
    /// Every block that holds metadata, as sorted, disjoint ranges.
    let metadata: [Range<Int64>]

    var inodeTableBlocks: Int { inodesPerGroup / Self.inodesPerBlock }
    var inodeCount: Int { inodesPerGroup * groupCount }

    /// - Parameters:
    ///   - bytes: the size of the region; a partial block at its end is left out.
    ///   - bytesPerInode: mke2fs's `-i` (inode_ratio).
    ///   - journalBlocks: nil for mke2fs's default for this size.
    init(bytes: Int64, bytesPerInode: Int, journalBlocks: Int?) throws(Ext4Error) {
        var blocks = bytes / Int64(Self.blockSize)
        guard blocks >= 2048 else {
            throw Ext4Error(.invalidGeometry, "\(bytes) bytes is too small for ext4 with a journal (8 MiB at least)")
        }
        guard blocks < Int64(1) << 40 else { throw Ext4Error(.invalidGeometry, "\(bytes) bytes is too large") }
        guard bytesPerInode >= Self.inodeSize, bytesPerInode <= 1 << 26 else {
            throw Ext4Error(.invalidGeometry, "\(bytesPerInode) bytes per inode is out of range")
        }
        var groups = Int((blocks + Int64(Self.blocksPerGroup) - 1) / Int64(Self.blocksPerGroup))
        let wantedInodes = blocks * Int64(Self.blockSize) / Int64(bytesPerInode)
        var perGroup = Int((wantedInodes + Int64(groups) - 1) / Int64(groups))
        perGroup = min(max(perGroup, Self.inodesPerBlock), Self.blocksPerGroup)
        perGroup = (perGroup + Self.inodesPerBlock - 1) / Self.inodesPerBlock * Self.inodesPerBlock
        // A last group too small for its own metadata and some data is left out, as mke2fs does.
        let last = blocks - Int64(groups - 1) * Int64(Self.blocksPerGroup)
        let descriptorBlocksIfKept = (groups * Self.descriptorSize + Self.blockSize - 1) / Self.blockSize
        let lastOverhead =
            (Self.hasSuperblock(groups - 1) ? 1 + descriptorBlocksIfKept : 0) + 2
            + perGroup / Self.inodesPerBlock
        if groups > 1, last < Int64(lastOverhead + 50) {
            blocks -= last
            groups -= 1
        }
        guard Int64(perGroup) * Int64(groups) < Int64(UInt32.max) else {
            throw Ext4Error(.invalidGeometry, "\(bytesPerInode) bytes per inode gives more than 2^32 inodes")
        }
        blockCount = blocks
        groupCount = groups
        inodesPerGroup = perGroup
        descriptorBlocks = (groups * Self.descriptorSize + Self.blockSize - 1) / Self.blockSize
        self.journalBlocks = journalBlocks ?? Self.defaultJournalBlocks(blocks)

        var backups: [Range<Int64>] = []
        for group in 0..<groups where Self.hasSuperblock(group) {
            let start = Int64(group) * Int64(Self.blocksPerGroup)
            backups.append(start..<start + 1 + Int64(descriptorBlocks))
        }
        // Each flex group's metadata, placed from its first group on, stepping over backups.
        var blockBitmaps = [Int64](repeating: 0, count: groups)
        var inodeBitmaps = blockBitmaps
        var inodeTables = blockBitmaps
        var placed: [Range<Int64>] = []
        let tableBlocks = Int64(perGroup / Self.inodesPerBlock)
        for first in stride(from: 0, to: groups, by: Self.groupsPerFlex) {
            let members = first..<min(first + Self.groupsPerFlex, groups)
            var cursor = Int64(first) * Int64(Self.blocksPerGroup)
            func place(_ count: Int64) -> Int64 {
                while let clash = backups.first(where: { $0.overlaps(cursor..<cursor + count) }) {
                    cursor = clash.upperBound
                }
                defer { cursor += count }
                return cursor
            }
            for group in members { blockBitmaps[group] = place(1) }
            for group in members { inodeBitmaps[group] = place(1) }
            for group in members { inodeTables[group] = place(tableBlocks) }
            placed.append(Int64(first) * Int64(Self.blocksPerGroup)..<cursor)
        }
        guard let end = placed.last?.upperBound, end < blocks else {
            throw Ext4Error(
                .invalidGeometry, "\(bytes) bytes cannot hold the inode tables of \(perGroup) inodes per group")
        }
        self.blockBitmaps = blockBitmaps
        self.inodeBitmaps = inodeBitmaps
        self.inodeTables = inodeTables
        metadata = Self.merge(backups + placed)
    }

    /// With sparse_super, groups 0 and 1 and the powers of 3, 5 and 7 hold a superblock copy.
    static func hasSuperblock(_ group: Int) -> Bool {
        if group <= 1 { return true }
        for base in [3, 5, 7] {
            var power = base
            while power < group { power *= base }
            if power == group { return true }
        }
        return false
    }

    func groupStart(_ group: Int) -> Int64 { Int64(group) * Int64(Self.blocksPerGroup) }

    func blocksInGroup(_ group: Int) -> Int {
        Int(min(Int64(Self.blocksPerGroup), blockCount - groupStart(group)))
    }

    /// mke2fs's `ext2fs_default_journal_size` for 4 KiB blocks (e2fsprogs 1.47).
    static func defaultJournalBlocks(_ blocks: Int64) -> Int {
        switch blocks {
        case ..<32768: return 1024
        case ..<(256 * 1024): return 4096
        case ..<(512 * 1024): return 8192
        case ..<(4096 * 1024): return 16384
        case ..<(8192 * 1024): return 32768
        case ..<(16384 * 1024): return 65536
        case ..<(32768 * 1024): return 131072
        default: return 262144
        }
    }

    private static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        var merged: [Range<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !range.isEmpty {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}
