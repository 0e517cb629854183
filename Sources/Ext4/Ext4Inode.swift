import KilnSupport

/// One inode as the writer keeps it until the end, when the inode tables are written.
struct Ext4Inode {
    /// `i_mode`: type and permission bits.
    var mode: UInt16
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var size: UInt64 = 0
    /// Access, change and modification time, already clamped.
    var time: Int64
    var links: UInt32 = 1
    var flags: UInt32 = 0
    /// The data blocks, in logical order.
    var extents: [Ext4Extent] = []
    /// `i_block` written as is: a fast symlink's target or a device number (nil: the extent tree).
    var inlineBlock: [UInt8]?
    /// Extended attributes that did not fit in the inode: written to a block of their own at the end.
    var blockAttributes: [Ext4ExtendedAttributes.Stored] = []
    /// Blocks that are not data but count in `i_blocks`: extent tree nodes, an attribute block.
    var metadataBlocks: Int64 = 0
    /// `i_file_acl`: the block holding the attributes that did not fit in the inode.
    var attributeBlock: Int64 = 0
    /// The encoded in-inode attributes (from offset 0xA0), when there are any.
    var inlineAttributes: [UInt8]?

    static let extentsFlag: UInt32 = 0x80000
    static let regular: UInt16 = 0o100000
    static let directory: UInt16 = 0o040000
    static let symlink: UInt16 = 0o120000
    static let characterDevice: UInt16 = 0o020000
    static let blockDevice: UInt16 = 0o060000
    static let fifo: UInt16 = 0o010000
    static let socket: UInt16 = 0o140000

    var isDirectory: Bool { mode & 0o170000 == Self.directory }

    /// The directory entry's file type (`ext4_dir_entry_2.file_type`).
    var directoryFileType: UInt8 {
        switch mode & 0o170000 {
        case Self.regular: return 1
        case Self.directory: return 2
        case Self.characterDevice: return 3
        case Self.blockDevice: return 4
        case Self.fifo: return 5
        case Self.socket: return 6
        case Self.symlink: return 7
        default: return 0
        }
    }

    var dataBlocks: Int64 { extents.reduce(0) { $0 + Int64($1.length) } }

    /// The 256-byte on-disk inode (`struct ext4_inode`, all fields little-endian), its checksum set.
    /// - Parameters:
    ///   - root: the 60 bytes of `i_block` (extent tree root, symlink target or device number).
    ///   - creation: the creation time (`i_crtime`).
    func encoded(number: UInt32, root: [UInt8], creation: Int64, checksumSeed: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.inodeSize)
        bytes.putLE16(mode, at: 0x00)
        bytes.putLE16(UInt16(truncatingIfNeeded: uid), at: 0x02)
        bytes.putLE32(UInt32(truncatingIfNeeded: size), at: 0x04)
        Self.putTime(time, &bytes, at: 0x08, extra: 0x8C)  // access
        Self.putTime(time, &bytes, at: 0x0C, extra: 0x84)  // change
        Self.putTime(time, &bytes, at: 0x10, extra: 0x88)  // modification
        bytes.putLE16(UInt16(truncatingIfNeeded: gid), at: 0x18)
        // dir_nlink: a directory with more links than the field holds counts 1 ("unknown").
        bytes.putLE16(links > 65000 ? 1 : UInt16(links), at: 0x1A)
        // i_blocks counts 512-byte sectors (huge_file without EXT4_HUGE_FILE_FL): 48 bits in two fields.
        let sectors = UInt64(dataBlocks + metadataBlocks) * UInt64(Ext4Geometry.blockSize / 512)
        bytes.putLE32(UInt32(truncatingIfNeeded: sectors), at: 0x1C)
        bytes.putLE16(UInt16(truncatingIfNeeded: sectors >> 32), at: 0x74)
        bytes.putLE32(flags, at: 0x20)
        bytes.put(root, at: 0x28)
        bytes.putLE32(UInt32(truncatingIfNeeded: attributeBlock), at: 0x68)
        bytes.putLE16(UInt16(truncatingIfNeeded: attributeBlock >> 32), at: 0x76)
        bytes.putLE32(UInt32(truncatingIfNeeded: size >> 32), at: 0x6C)
        bytes.putLE16(UInt16(truncatingIfNeeded: uid >> 16), at: 0x78)
        bytes.putLE16(UInt16(truncatingIfNeeded: gid >> 16), at: 0x7A)
        bytes.putLE16(32, at: 0x80)  // i_extra_isize: through i_projid, as mke2fs
        Self.putTime(creation, &bytes, at: 0x90, extra: 0x94)
        if let inlineAttributes { bytes.put(inlineAttributes, at: 0xA0) }
        Self.setChecksum(&bytes, number: number, seed: checksumSeed)
        return bytes
    }

    /// Seconds in the base field, the bits above 32 in the low two bits of the extra field (whose
    /// other 30 bits, the nanoseconds, stay 0).
    static func putTime(_ seconds: Int64, _ bytes: inout [UInt8], at: Int, extra: Int) {
        bytes.putLE32(UInt32(truncatingIfNeeded: seconds), at: at)
        let epochBits = (seconds - Int64(Int32(truncatingIfNeeded: seconds))) >> 32
        bytes.putLE32(UInt32(truncatingIfNeeded: epochBits) & 3, at: extra)
    }

    /// CRC-32C from the file system's seed over the inode number, the generation and the whole inode
    /// with both checksum halves zero; the high half only where `i_extra_isize` reaches it.
    static func setChecksum(_ bytes: inout [UInt8], number: UInt32, seed: UInt32) {
        let hasHigh = bytes.le16(0x80) >= 4
        bytes.putLE16(0, at: 0x7C)
        if hasHigh { bytes.putLE16(0, at: 0x82) }
        var crc = CRC32C.update(seed, le32: number)
        crc = CRC32C.update(crc, le32: bytes.le32(0x64))
        crc = CRC32C.update(crc, bytes, 0..<bytes.count)
        bytes.putLE16(UInt16(crc & 0xFFFF), at: 0x7C)
        if hasHigh { bytes.putLE16(UInt16(crc >> 16), at: 0x82) }
    }

    /// The per-inode seed of directory, extent and attribute checksums: the file system's seed over
    /// the inode number and generation (always 0 here).
    static func checksumSeed(number: UInt32, fileSystemSeed: UInt32) -> UInt32 {
        CRC32C.update(CRC32C.update(fileSystemSeed, le32: number), le32: 0)
    }
}

/// A run of data blocks: `length` blocks from file block `logical` on, at disk block `physical`.
struct Ext4Extent: Equatable {
    var logical: UInt32
    var physical: Int64
    var length: Int

    /// The longest initialized extent (`ee_len` above this marks an unwritten one).
    static let maximumLength = 32768
}
