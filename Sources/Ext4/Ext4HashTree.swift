import KilnSupport

/// Hashed (htree) directories ("ext4 Data Structures and Algorithms": Hash Tree Directories): a root
/// block of index entries, one level of index nodes when the root cannot hold them all, and leaf
/// blocks of ordinary entries in hash order, so that a lookup reads two or three blocks, not all.
enum Ext4HashTree {
    /// `EXT4_INDEX_FL` on the directory's inode.
    static let indexFlag: UInt32 = 0x1000
    /// Index entries (8 bytes) that fit beside the root's "." and ".." (32 bytes) and the 8-byte
    /// `dx_tail` that holds the checksum; a node has only an 8-byte empty entry before them.
    static let rootLimit = (Ext4Geometry.blockSize - 0x20 - 8) / 8
    static let nodeLimit = (Ext4Geometry.blockSize - 0x08 - 8) / 8

    private struct Leaf {
        var block: [UInt8]
        /// The first entry's hash, its low bit set when it continues the previous leaf's last hash.
        var hash: UInt32
    }

    /// The directory's blocks (root, nodes, leaves, in logical order), or nil when the entries fit
    /// in one linear block (the kernel indexes a directory only once it outgrows one) or would need
    /// a third index level (large_dir, not among Debian 12's features).
    static func blocks(
        number: UInt32, parent: UInt32, entries: [Ext4DirectoryEntry], checksumSeed seed: UInt32, hashSeed: [UInt32]
    ) -> [[UInt8]]? {
        let linearBytes = entries.reduce(24) { $0 + Ext4DirectoryBuilder.entryLength(nameLength: $1.name.count) }
        guard linearBytes > Ext4DirectoryBuilder.usable else { return nil }

        let hashed = entries.map { (hash: halfMD4($0.name, seed: hashSeed), entry: $0) }.sorted { a, b in
            if a.hash.major != b.hash.major { return a.hash.major < b.hash.major }
            if a.hash.minor != b.hash.minor { return a.hash.minor < b.hash.minor }
            return Ext4Bytes.precedes(a.entry.name, b.entry.name)
        }
        var leaves: [Leaf] = []
        var block = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        var offset = 0
        var last = -1
        var previousHash: UInt32?
        for (hash, entry) in hashed {
            let length = Ext4DirectoryBuilder.entryLength(nameLength: entry.name.count)
            if offset + length > Ext4DirectoryBuilder.usable || leaves.isEmpty && last < 0 {
                if last >= 0 {
                    block.putLE16(UInt16(Ext4DirectoryBuilder.usable - last), at: last + 4)
                    leaves[leaves.count - 1].block = Ext4DirectoryBuilder.sealed(block, seed: seed)
                    block = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
                }
                leaves.append(Leaf(block: [], hash: hash.major | (previousHash == hash.major ? 1 : 0)))
                offset = 0
            }
            block.putLE32(entry.inode, at: offset)
            block.putLE16(UInt16(length), at: offset + 4)
            block[offset + 6] = UInt8(entry.name.count)
            block[offset + 7] = entry.fileType
            block.put(entry.name, at: offset + 8)
            last = offset
            offset += length
            previousHash = hash.major
        }
        block.putLE16(UInt16(Ext4DirectoryBuilder.usable - last), at: last + 4)
        leaves[leaves.count - 1].block = Ext4DirectoryBuilder.sealed(block, seed: seed)

        if leaves.count <= rootLimit {
            let indexes = leaves.enumerated().map { (hash: $1.hash, block: UInt32(1 + $0)) }
            return [root(number: number, parent: parent, levels: 0, indexes: indexes, seed: seed)] + leaves.map(\.block)
        }
        let groups = stride(from: 0, to: leaves.count, by: nodeLimit).map { $0..<min($0 + nodeLimit, leaves.count) }
        guard groups.count <= rootLimit else { return nil }
        let firstLeaf = UInt32(1 + groups.count)
        let nodes = groups.map { range in
            node(indexes: range.map { (hash: leaves[$0].hash, block: firstLeaf + UInt32($0)) }, seed: seed)
        }
        let indexes = groups.enumerated().map { (hash: leaves[$1.lowerBound].hash, block: UInt32(1 + $0)) }
        return [root(number: number, parent: parent, levels: 1, indexes: indexes, seed: seed)] + nodes
            + leaves.map(\.block)
    }

    /// Block 0: "." and ".." as in any directory (".." reaching the end of the block), `dx_root_info`,
    /// then the index entries.
    private static func root(
        number: UInt32, parent: UInt32, levels: UInt8, indexes: [(hash: UInt32, block: UInt32)], seed: UInt32
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        bytes.putLE32(number, at: 0x00)
        bytes.putLE16(12, at: 0x04)
        bytes[0x06] = 1
        bytes[0x07] = 2
        bytes[0x08] = 0x2E
        bytes.putLE32(parent, at: 0x0C)
        bytes.putLE16(UInt16(Ext4Geometry.blockSize - 12), at: 0x10)
        bytes[0x12] = 2
        bytes[0x13] = 2
        bytes[0x14] = 0x2E
        bytes[0x15] = 0x2E
        bytes.putLE32(0, at: 0x18)  // dx_root_info.reserved_zero
        bytes[0x1C] = 1  // hash_version: half_md4 (signed or not as the superblock's flags say)
        bytes[0x1D] = 8  // info_length
        bytes[0x1E] = levels  // indirect_levels
        putIndexes(indexes, &bytes, at: 0x20, limit: rootLimit, seed: seed)
        return bytes
    }

    /// An interior node: an empty entry spanning the block, then the index entries.
    private static func node(indexes: [(hash: UInt32, block: UInt32)], seed: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        bytes.putLE16(UInt16(Ext4Geometry.blockSize), at: 0x04)
        putIndexes(indexes, &bytes, at: 0x08, limit: nodeLimit, seed: seed)
        return bytes
    }

    /// `dx_countlimit` over the first entry's hash (the first block takes every hash below the
    /// second entry's), the entries, and `dx_tail`'s CRC-32C of the entries in use and the tail's
    /// reserved word, from the directory inode's seed (`ext4_dx_csum`).
    private static func putIndexes(
        _ indexes: [(hash: UInt32, block: UInt32)], _ bytes: inout [UInt8], at start: Int, limit: Int, seed: UInt32
    ) {
        bytes.putLE16(UInt16(limit), at: start)
        bytes.putLE16(UInt16(indexes.count), at: start + 2)
        for (n, index) in indexes.enumerated() {
            if n > 0 { bytes.putLE32(index.hash, at: start + 8 * n) }
            bytes.putLE32(index.block, at: start + 8 * n + 4)
        }
        let tail = start + 8 * limit
        var crc = CRC32C.update(seed, bytes, 0..<start + 8 * indexes.count)
        crc = CRC32C.update(crc, bytes, tail..<tail + 4)
        crc = CRC32C.update(crc, le32: 0)
        bytes.putLE32(crc, at: tail + 4)
    }

    /// ext4's half-MD4 name hash, signed-char variant (`ext2fs_dirhash` with DX_HASH_HALF_MD4):
    /// the name in 32-byte pieces through a shortened MD4 round, seeded with the superblock's hash
    /// seed; the major hash has its low bit cleared (that bit marks collisions in the index).
    static func halfMD4(_ name: [UInt8], seed: [UInt32]) -> (major: UInt32, minor: UInt32) {
        var buffer: [UInt32] =
            seed.allSatisfy({ $0 == 0 }) ? [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476] : seed
        var input = [UInt32](repeating: 0, count: 8)
        var start = 0
        repeat {
            fill(&input, from: name, start: start)
            transform(&buffer, input)
            start += 32
        } while start < name.count
        var major = buffer[1] & ~1
        if major == 0x7FFF_FFFF << 1 { major = (0x7FFF_FFFF - 1) << 1 }
        return (major, buffer[2])
    }

    /// `str2hashbuf_signed`: up to 32 bytes from `start`, as signed chars shifted into 8 words; what
    /// is left over is padded with the length still to hash (from `start`, not the whole name's).
    private static func fill(_ words: inout [UInt32], from name: [UInt8], start: Int) {
        let remaining = name.count - start
        var pad = UInt32(truncatingIfNeeded: remaining) | UInt32(truncatingIfNeeded: remaining) << 8
        pad |= pad << 16
        let count = min(remaining, 32)
        var value = pad
        var word = 0
        for i in 0..<count {
            value = UInt32(bitPattern: Int32(Int8(bitPattern: name[start + i]))) &+ (value << 8)
            if i % 4 == 3 {
                words[word] = value
                word += 1
                value = pad
            }
        }
        if word < 8 {
            words[word] = value
            word += 1
        }
        while word < 8 {
            words[word] = pad
            word += 1
        }
    }

    /// `half_md4_transform`: three rounds of eight steps, each updating a, d, c, b in turn.
    private static func transform(_ buffer: inout [UInt32], _ x: [UInt32]) {
        var (a, b, c, d) = (buffer[0], buffer[1], buffer[2], buffer[3])
        @inline(__always) func rotate(_ v: UInt32, _ s: UInt32) -> UInt32 { v << s | v >> (32 - s) }
        @inline(__always) func f(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { z ^ (x & (y ^ z)) }
        @inline(__always) func g(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { (x & y) &+ ((x ^ y) & z) }
        @inline(__always) func h(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { x ^ y ^ z }
        let k2: UInt32 = 0o13240474631
        let k3: UInt32 = 0o15666365641
        for n in stride(from: 0, to: 8, by: 4) {
            a = rotate(a &+ f(b, c, d) &+ x[n], 3)
            d = rotate(d &+ f(a, b, c) &+ x[n + 1], 7)
            c = rotate(c &+ f(d, a, b) &+ x[n + 2], 11)
            b = rotate(b &+ f(c, d, a) &+ x[n + 3], 19)
        }
        for n in [1, 0] {
            a = rotate(a &+ g(b, c, d) &+ x[n] &+ k2, 3)
            d = rotate(d &+ g(a, b, c) &+ x[n + 2] &+ k2, 5)
            c = rotate(c &+ g(d, a, b) &+ x[n + 4] &+ k2, 9)
            b = rotate(b &+ g(c, d, a) &+ x[n + 6] &+ k2, 13)
        }
        for n in [3, 1] {
            a = rotate(a &+ h(b, c, d) &+ x[n] &+ k3, 3)
            d = rotate(d &+ h(a, b, c) &+ x[n + 4] &+ k3, 9)
            c = rotate(c &+ h(d, a, b) &+ x[n - 1] &+ k3, 11)
            b = rotate(b &+ h(c, d, a) &+ x[n + 3] &+ k3, 15)
        }
        buffer[0] &+= a
        buffer[1] &+= b
        buffer[2] &+= c
        buffer[3] &+= d
    }
}
