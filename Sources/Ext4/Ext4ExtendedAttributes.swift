import KilnSupport

/// Encodes extended attributes in the inode's spare space and in an attribute block ("ext4 Data
/// Structures and Algorithms": Extended Attributes): names stored without their prefix, which becomes
/// an index; entries sorted by index, name length and name, as the kernel's lookup in a block expects.
enum Ext4ExtendedAttributes {
    static let magic: UInt32 = 0xEA02_0000
    /// In the inode: from 0xA0 (after 32 bytes of `i_extra_isize`) to its end, a 4-byte magic first.
    static let inodeAreaSize = Ext4Geometry.inodeSize - 0xA0
    static let blockHeaderSize = 32

    /// An attribute as stored: prefix index, the rest of the name, the value in ext4's form.
    struct Stored: Equatable {
        var index: UInt8
        var name: [UInt8]
        var value: [UInt8]

        var entryLength: Int { (16 + name.count + 3) & ~3 }
        var valueLength: Int { (value.count + 3) & ~3 }
    }

    /// Prefixes and their indexes (`EXT4_XATTR_INDEX_*`); whole names first, then longest prefix.
    private static let prefixes: [(String, UInt8)] = [
        ("system.posix_acl_access", 2), ("system.posix_acl_default", 3), ("security.", 6), ("trusted.", 4),
        ("system.", 7), ("user.", 1),
    ]

    static func stored(_ attribute: Ext4ExtendedAttribute, path: String) throws(Ext4Error) -> Stored {
        guard let (prefix, index) = prefixes.first(where: { attribute.name.hasPrefix($0.0) }) else {
            throw Ext4Error(.invalidEntry, "\(path): extended attribute \(attribute.name) has no prefix ext4 knows")
        }
        let name = Array(attribute.name.utf8.dropFirst(prefix.utf8.count))
        guard name.count <= 255, index <= 3 || !name.isEmpty else {
            throw Ext4Error(.invalidEntry, "\(path): extended attribute name \(attribute.name) is empty or too long")
        }
        var value = attribute.value
        if index == 2 || index == 3 { value = try acl(value, name: attribute.name, path: path) }
        return Stored(index: index, name: name, value: value)
    }

    /// A POSIX ACL from the VFS form (version 2, every entry tag, permissions and id, 8 bytes) to
    /// ext4's (version 1, the id only for named users and groups: `ext4_acl_entry` and its short form).
    static func acl(_ value: [UInt8], name: String, path: String) throws(Ext4Error) -> [UInt8] {
        guard value.count >= 4, (value.count - 4) % 8 == 0, value.le32(0) == 2 else {
            throw Ext4Error(.invalidEntry, "\(path): \(name) is not a POSIX ACL in the VFS format (version 2)")
        }
        var out: [UInt8] = [1, 0, 0, 0]
        for at in stride(from: 4, to: value.count, by: 8) {
            let tag = value.le16(at)
            out += value[at..<at + 4]
            switch tag {
            case 0x02, 0x08: out += value[at + 4..<at + 8]  // ACL_USER, ACL_GROUP carry an id
            case 0x01, 0x04, 0x10, 0x20: break  // USER_OBJ, GROUP_OBJ, MASK, OTHER do not
            default: throw Ext4Error(.invalidEntry, "\(path): \(name) has an unknown ACL tag \(tag)")
            }
        }
        return out
    }

    /// Sorted, and split into those that fit in the inode and the rest, for one block.
    static func split(_ attributes: [Stored], path: String) throws(Ext4Error) -> (inode: [Stored], block: [Stored]) {
        let sorted = attributes.sorted { a, b in
            if a.index != b.index { return a.index < b.index }
            if a.name.count != b.name.count { return a.name.count < b.name.count }
            return Ext4Bytes.precedes(a.name, b.name)
        }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.index == b.index && a.name == b.name {
            throw Ext4Error(
                .invalidEntry, "\(path): extended attribute \(String(decoding: a.name, as: UTF8.self)) twice")
        }
        var inode: [Stored] = []
        var block: [Stored] = []
        var used = 4 + 4  // magic and the terminating zero word
        for attribute in sorted {
            if block.isEmpty, used + attribute.entryLength + attribute.valueLength <= inodeAreaSize {
                inode.append(attribute)
                used += attribute.entryLength + attribute.valueLength
            } else {
                block.append(attribute)
            }
        }
        let blockUsed = block.reduce(blockHeaderSize + 4) { $0 + $1.entryLength + $1.valueLength }
        guard blockUsed <= Ext4Geometry.blockSize else {
            throw Ext4Error(.invalidEntry, "\(path): extended attributes need \(blockUsed) bytes, more than one block")
        }
        return (inode, block)
    }

    /// The inode's attribute area (from offset 0xA0): magic, entries, values packed at the end.
    static func inodeArea(_ attributes: [Stored]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: inodeAreaSize)
        bytes.putLE32(magic, at: 0)
        // Value offsets count from the first entry, 4 bytes in.
        var area = [UInt8](repeating: 0, count: inodeAreaSize - 4)
        place(attributes, in: &area, entriesAt: 0)
        bytes.put(area, at: 4)
        return bytes
    }

    /// The attribute block (`ext4_xattr_header`, entries, values), its hash and checksum set.
    static func block(_ attributes: [Stored], number: Int64, fileSystemSeed: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        bytes.putLE32(magic, at: 0)
        bytes.putLE32(1, at: 4)  // h_refcount
        bytes.putLE32(1, at: 8)  // h_blocks
        let hashes = place(attributes, in: &bytes, entriesAt: blockHeaderSize)
        // h_hash: the entries' hashes folded (ext2fs_ext_attr_block_rehash).
        var hash: UInt32 = 0
        for entryHash in hashes { hash = (hash << 16) ^ (hash >> 16) ^ entryHash }
        bytes.putLE32(hash, at: 0x0C)
        var crc = CRC32C.update(fileSystemSeed, le32: UInt32(truncatingIfNeeded: number))
        crc = CRC32C.update(crc, le32: UInt32(truncatingIfNeeded: number >> 32))
        bytes.putLE32(CRC32C.update(crc, bytes, 0..<bytes.count), at: 0x10)
        return bytes
    }

    /// Writes entries from `entriesAt` and values down from the end; returns each entry's hash.
    @discardableResult
    private static func place(_ attributes: [Stored], in bytes: inout [UInt8], entriesAt: Int) -> [UInt32] {
        var entry = entriesAt
        var valueEnd = bytes.count
        var hashes: [UInt32] = []
        for attribute in attributes {
            valueEnd -= attribute.valueLength
            bytes.put(attribute.value, at: valueEnd)
            let hash = self.hash(attribute)
            bytes[entry] = UInt8(attribute.name.count)
            bytes[entry + 1] = attribute.index
            bytes.putLE16(UInt16(attribute.value.isEmpty ? 0 : valueEnd), at: entry + 2)
            bytes.putLE32(0, at: entry + 4)  // e_value_inum: the value is here, not in an inode
            bytes.putLE32(UInt32(attribute.value.count), at: entry + 8)
            bytes.putLE32(hash, at: entry + 12)
            bytes.put(attribute.name, at: entry + 16)
            entry += attribute.entryLength
            hashes.append(hash)
        }
        return hashes
    }

    /// `ext2fs_ext_attr_hash_entry`: the name's bytes, then the value's little-endian words.
    static func hash(_ attribute: Stored) -> UInt32 {
        var hash: UInt32 = 0
        for byte in attribute.name {
            hash = (hash << 5) ^ (hash >> 27) ^ UInt32(bitPattern: Int32(Int8(bitPattern: byte)))
        }
        var padded = attribute.value
        padded += [UInt8](repeating: 0, count: attribute.valueLength - attribute.value.count)
        for at in stride(from: 0, to: padded.count, by: 4) {
            hash = (hash << 16) ^ (hash >> 16) ^ padded.le32(at)
        }
        return hash
    }
}
