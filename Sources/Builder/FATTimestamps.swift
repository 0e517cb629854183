import DiskImage

/// Sets every directory entry's times in a FAT32 file system (the ESP) to SOURCE_DATE_EPOCH, in place.
///
/// The kernel's vfat stamps entries with the guest's clock when grub-install writes them, so their
/// creation, write and access times say when the build ran. Layout: Microsoft's "FAT: General
/// Overview of On-Disk Format" (BPB, FAT, 32-byte directory entries); every field is little-endian.
struct FATTimestamps {
    let region: DiskRegion
    let epoch: Int64

    @discardableResult
    func apply() throws(BuilderError) -> Int {
        let boot = try region.read(0, 512)
        let bytesPerSector = Int64(boot.le16(11))
        let sectorsPerCluster = Int64(boot[13])
        let reserved = Int64(boot.le16(14))
        let fatCount = Int64(boot[16])
        let fatSize = Int64(boot.le32(36))
        guard boot[510] == 0x55, boot[511] == 0xAA, boot.le16(22) == 0, fatSize > 0, bytesPerSector >= 512,
            sectorsPerCluster > 0
        else {
            throw BuilderError("\(region.path): not a FAT32 file system")
        }
        let fat = try region.read(reserved * bytesPerSector, Int(fatSize * bytesPerSector))
        let clusterBytes = Int(bytesPerSector * sectorsPerCluster)
        let dataStart = (reserved + fatCount * fatSize) * bytesPerSector
        let (time, date) = FATTime.encode(epoch)

        var changed = 0
        var visited: Set<UInt32> = []
        var pending: [UInt32] = [boot.le32(44)]
        while let first = pending.popLast() {
            var cluster = first
            var ended = false
            while !ended, cluster >= 2, Int(cluster) * 4 + 4 <= fat.count, visited.insert(cluster).inserted {
                let offset = dataStart + Int64(cluster - 2) * Int64(clusterBytes)
                var entries = try region.read(offset, clusterBytes)
                var dirty = false
                for at in stride(from: 0, to: clusterBytes, by: 32) {
                    if entries[at] == 0 {  // no entry follows
                        ended = true
                        break
                    }
                    let attributes = entries[at + 11]
                    if attributes & 0x3F == 0x0F { continue }  // a long-name part: no times
                    let before = Array(entries[at..<at + 32])
                    entries[at + 13] = 0  // creation time, tenths of seconds
                    entries.putLE16(time, at: at + 14)
                    entries.putLE16(date, at: at + 16)
                    entries.putLE16(date, at: at + 18)  // last access date
                    entries.putLE16(time, at: at + 22)
                    entries.putLE16(date, at: at + 24)
                    if Array(entries[at..<at + 32]) != before { dirty = true }
                    let name = entries[at..<at + 11]
                    let live = entries[at] != 0xE5
                    let dotted = name.first == UInt8(ascii: ".")
                    if live && attributes & 0x10 != 0 && !dotted {
                        pending.append(UInt32(entries.le16(at + 20)) << 16 | UInt32(entries.le16(at + 26)))
                    }
                }
                if dirty {
                    try region.write(entries, at: offset)
                    changed += 1
                }
                cluster = fat.le32(Int(cluster) * 4) & 0x0FFF_FFFF
            }
        }
        return changed
    }
}
