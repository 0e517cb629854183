/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of VHDX headers and of ext4's
/// metadata.
package enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The standard CRC-32C of `bytes` (initial value and final inversion ~0), as VHDX uses it.
    package static func checksum(_ bytes: [UInt8]) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes)
    }

    /// A running value with no final inversion, so that one field's checksum continues another's, as
    /// ext4 chains them (`ext2fs_crc32c_le`: starting from ~0 or from the file system's seed).
    package static func update(_ crc: UInt32, _ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = crc
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }

    /// `update` over a 32-bit value in little-endian byte order.
    package static func update(_ crc: UInt32, le32 value: UInt32) -> UInt32 {
        // Byte by byte from the table, without building an array: ext4 calls this for every inode.
        var crc = crc
        for shift in stride(from: UInt32(0), to: 32, by: 8) {
            crc = table[Int((crc ^ (value >> shift)) & 0xFF)] ^ (crc >> 8)
        }
        return crc
    }
}

extension CRC32C {
    /// `update` over raw memory, for callers that checksum whole blocks (ext4's inode tables and
    /// bitmaps), where walking a generic sequence byte by byte would dominate the time.
    package static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = crc
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc
    }

    /// `update` over part of a byte array, through its memory.
    package static func update(_ crc: UInt32, _ bytes: [UInt8], _ range: Range<Int>) -> UInt32 {
        bytes.withUnsafeBytes { update(crc, UnsafeRawBufferPointer(rebasing: $0[range])) }
    }
}
