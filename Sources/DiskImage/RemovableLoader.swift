import KilnSupport

/// Which removable-media boot loader a disk's EFI system partition holds (`EFI/BOOT/BOOTX64.EFI`
/// or `BOOTAA64.EFI`, UEFI 2.10 section 3.5.1.1): the machine the disk boots on, as `kiln test`
/// needs to know it. Reads the ESP's FAT32 directories through any `DiskReader`, short names only
/// (Microsoft's "FAT: General Overview of On-Disk Format"; every field little-endian).
package enum RemovableLoader {
    /// The architecture of the loader found, nil when the disk has no ESP or no such loader.
    package static func architecture(of reader: any DiskReader) throws(DiskImageError) -> Architecture? {
        guard let table = try PartitionTable.read(from: reader) else { return nil }
        for partition in table.partitions where partition.type == espType || partition.type == "EF" {
            guard let volume = try FATVolume(reader: reader, offset: partition.start) else { continue }
            guard let efi = try volume.find("EFI", in: volume.rootCluster),
                let boot = try volume.find("BOOT", in: efi)
            else { continue }
            // Short names are upper case, padded to 8 + 3.
            if try volume.find("BOOTAA64.EFI", in: boot) != nil { return .aarch64 }
            if try volume.find("BOOTX64.EFI", in: boot) != nil { return .x86_64 }
        }
        return nil
    }

    static let espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
}

/// Just enough of a FAT32 file system to follow directories by short name.
private struct FATVolume {
    let reader: any DiskReader
    let offset: UInt64
    let bytesPerSector: UInt64
    let sectorsPerCluster: UInt64
    let fatStart: UInt64
    let dataStart: UInt64
    let rootCluster: UInt32

    /// Nil when the partition holds no FAT32 boot sector.
    init?(reader: any DiskReader, offset: UInt64) throws(DiskImageError) {
        let boot = Bytes(try reader.read(count: 512, at: offset))
        let bytesPerSector = UInt64(boot.getLE(UInt16.self, at: 11))
        let sectorsPerCluster = UInt64(boot[13])
        let reserved = UInt64(boot.getLE(UInt16.self, at: 14))
        let fatCount = UInt64(boot[16])
        let fatSize = UInt64(boot.getLE(UInt32.self, at: 36))
        // FAT32: no 16-bit FAT size (offset 22), a 32-bit one instead.
        guard boot[510] == 0x55, boot[511] == 0xAA, boot.getLE(UInt16.self, at: 22) == 0, fatSize > 0,
            [512, 1024, 2048, 4096].contains(bytesPerSector), sectorsPerCluster > 0
        else { return nil }
        self.reader = reader
        self.offset = offset
        self.bytesPerSector = bytesPerSector
        self.sectorsPerCluster = sectorsPerCluster
        fatStart = offset + reserved * bytesPerSector
        dataStart = fatStart + fatCount * fatSize * bytesPerSector
        rootCluster = boot.getLE(UInt32.self, at: 44)
    }

    /// The first cluster of the entry named `name` in the directory starting at `cluster`.
    func find(_ name: String, in cluster: UInt32) throws(DiskImageError) -> UInt32? {
        let wanted = Self.shortName(name)
        let clusterBytes = Int(bytesPerSector * sectorsPerCluster)
        var current = cluster
        // A directory of more than 64 clusters, or a chain that loops, is not an ESP kiln reads.
        for _ in 0..<64 {
            guard current >= 2 && current < 0x0FFF_FFF8 else { return nil }
            let bytes = Bytes(
                try reader.read(count: clusterBytes, at: dataStart + UInt64(current - 2) * UInt64(clusterBytes)))
            for entry in stride(from: 0, to: clusterBytes, by: 32) {
                if bytes[entry] == 0 { return nil }  // no more entries
                let attributes = bytes[entry + 11]
                if bytes[entry] == 0xE5 || attributes == 0x0F { continue }  // deleted, long-name part
                if Array(bytes.storage[entry..<(entry + 11)]) == wanted {
                    let high = UInt32(bytes.getLE(UInt16.self, at: entry + 20))
                    let low = UInt32(bytes.getLE(UInt16.self, at: entry + 26))
                    return high << 16 | low
                }
            }
            let next = Bytes(try reader.read(count: 4, at: fatStart + UInt64(current) * 4))
            current = next.getLE(UInt32.self, at: 0) & 0x0FFF_FFFF
        }
        return nil
    }

    /// "BOOTX64.EFI" as a directory entry holds it: "BOOTX64 EFI".
    static func shortName(_ name: String) -> [UInt8] {
        let parts = name.uppercased().split(separator: ".", maxSplits: 1).map { Array($0.utf8) }
        let base = (parts.first ?? []).prefix(8)
        let ext = (parts.count > 1 ? parts[1] : []).prefix(3)
        return Array(base) + Array(repeating: 0x20, count: 8 - base.count) + Array(ext)
            + Array(repeating: 0x20, count: 3 - ext.count)
    }
}
