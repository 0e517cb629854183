import SystemPackage

/// Makes an empty FAT32 file system in a region of a disk file, as `mkfs.fat -F 32 -i ID -n LABEL` would
/// on the partition: a volume id, a label, the partition's start as its hidden sectors, and cluster
/// sizes as mkfs.fat chooses them.
///
/// Layout: Microsoft's "FAT: General Overview of On-Disk Format" (fatgen103): the boot sector with its
/// BIOS parameter block, the FSInfo sector at 1, their backups at 6 and 7, two FATs, the root directory
/// at cluster 2 holding the volume label. Every integer is little-endian. The boot sector carries no
/// boot loader: its code only asks the BIOS for the next boot device. The bytes depend only on the
/// inputs; only the reserved sectors, the FATs' first sectors and the root directory's cluster are
/// written (and the rest of the FATs where the region held data), so a sparse file stays sparse.
package struct FAT32Formatter: Sendable {
    package static let sectorSize: UInt64 = 512

    /// The volume id (serial number) as 8 hex digits, `809B9115`; blkid shows it as `809B-9115`.
    package var volumeID: String
    /// Up to 11 characters; lower-case letters are stored upper-case, as FAT has them.
    package var label: String
    /// The sector of the disk where the region starts (the BPB's hidden sectors).
    package var hiddenSectors: UInt64
    /// The volume label's times, seconds since 1970 (SOURCE_DATE_EPOCH).
    package var timestamp: Int64

    package init(volumeID: String, label: String, hiddenSectors: UInt64, timestamp: Int64) {
        self.volumeID = volumeID
        self.label = label
        self.hiddenSectors = hiddenSectors
        self.timestamp = timestamp
    }

    /// Where the parts of a file system of a given size lie, in sectors.
    package struct Geometry: Sendable, Equatable {
        package var totalSectors: UInt64
        package var sectorsPerCluster: UInt64
        package var reservedSectors: UInt64
        /// Sectors of each of the two FATs.
        package var fatSectors: UInt64
        package var clusters: UInt64

        package var dataStart: UInt64 { reservedSectors + 2 * fatSectors }
    }

    /// FAT32 counts at least 65 525 clusters (fewer is FAT16 to every reader) and at most 0x0FFFFFF5.
    static let minimumClusters: UInt64 = 65_525
    static let maximumClusters: UInt64 = 0x0FFF_FFF5
    static let fsInfoSector: UInt64 = 1
    static let backupBootSector: UInt64 = 6
    static let media: UInt8 = 0xF8  // a fixed disk
    static let rootCluster: UInt32 = 2

    /// The geometry for a region of `bytes`: clusters sized by the table Microsoft gives for FAT32
    /// (fatgen103 "DskTableFAT32", as mkfs.fat uses it), 32 reserved sectors or more so that the data
    /// area starts on a cluster boundary (as mkfs.fat aligns it), and the smallest FATs that map every
    /// cluster.
    package static func geometry(bytes: UInt64) throws(DiskImageError) -> Geometry {
        let total = bytes / sectorSize
        guard total <= UInt64(UInt32.max) else {
            throw DiskImageError(.invalidArgument, "\(bytes) bytes are more than a FAT32 file system can hold")
        }
        let perCluster: UInt64 =
            switch total {
            case ...532_480: 1  // up to 260 MiB: 512-byte clusters
            case ...16_777_216: 8  // up to 8 GiB: 4 KiB
            case ...33_554_432: 16  // up to 16 GiB: 8 KiB
            case ...67_108_864: 32  // up to 32 GiB: 16 KiB
            default: 64  // 32 KiB
            }
        func dataStart(_ fat: UInt64) -> UInt64 { (32 + 2 * fat).roundedUp(to: perCluster) }
        func clusters(_ fat: UInt64) -> UInt64 { total > dataStart(fat) ? (total - dataStart(fat)) / perCluster : 0 }
        // Entries 0 and 1 are reserved: cluster numbers start at 2, 4 bytes each.
        func needed(_ fat: UInt64) -> UInt64 { ((clusters(fat) + 2) * 4).roundedUp(to: sectorSize) / sectorSize }
        // The larger the FATs, the fewer clusters they must map: the smallest FAT size that maps every
        // cluster left beside it, found by bisection (`needed` only falls as `fat` grows).
        var low: UInt64 = 1
        var high = max(needed(1), 1)
        while low < high {
            let middle = (low + high) / 2
            if needed(middle) <= middle { high = middle } else { low = middle + 1 }
        }
        let count = clusters(low)
        guard count >= minimumClusters else {
            throw DiskImageError(
                .invalidArgument,
                "\(bytes / 1_048_576) MiB is too small for FAT32: \(count) clusters, FAT32 needs \(minimumClusters)")
        }
        guard count <= maximumClusters else {
            throw DiskImageError(.invalidArgument, "\(bytes) bytes are more than a FAT32 file system can hold")
        }
        return Geometry(
            totalSectors: total, sectorsPerCluster: perCluster, reservedSectors: dataStart(low) - 2 * low,
            fatSectors: low, clusters: count)
    }

    /// The label as the boot sector and the root directory hold it: 11 bytes, upper case, space-padded.
    func labelField() throws(DiskImageError) -> [UInt8] {
        // Characters fatgen103 forbids in short names (and mkfs.fat in labels), and anything not ASCII.
        let forbidden = Set("\"*+,./:;<=>?[\\]|".utf8)
        let bytes = Array(label.uppercased().utf8)
        guard !bytes.isEmpty, bytes.count <= 11,
            bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && !forbidden.contains($0) })
        else {
            throw DiskImageError(
                .invalidArgument, "'\(label)' is not a FAT label: 1 to 11 ASCII characters, none of \"*+,./:;<=>?[\\]|")
        }
        return bytes + [UInt8](repeating: 0x20, count: 11 - bytes.count)
    }

    func volumeIDValue() throws(DiskImageError) -> UInt32 {
        guard volumeID.utf8.count == 8, let value = UInt32(volumeID, radix: 16) else {
            throw DiskImageError(.invalidArgument, "'\(volumeID)' is not a FAT volume id: 8 hex digits")
        }
        return value
    }

    /// One sector-aligned piece of the file system to write, at `sector` from the region's start.
    package struct Piece: Sendable, Equatable {
        package var sector: UInt64
        package var bytes: [UInt8]
    }

    /// What the file system holds apart from zeros, for a region of `bytes`: the reserved sectors, each
    /// FAT's first sector and the root directory's cluster.
    package func encode(bytes: UInt64) throws(DiskImageError) -> (geometry: Geometry, pieces: [Piece]) {
        let geometry = try Self.geometry(bytes: bytes)
        let label = try labelField()
        let volume = try volumeIDValue()
        guard hiddenSectors <= UInt64(UInt32.max) else {
            throw DiskImageError(.invalidArgument, "a FAT32 file system cannot start past sector 2^32 of its disk")
        }
        let boot = bootSector(geometry, label: label, volume: volume)
        let info = fsInfo(geometry)
        var reserved = Bytes(count: Int(geometry.reservedSectors * Self.sectorSize))
        for (sector, bytes) in [
            (0, boot), (Self.fsInfoSector, info), (Self.backupBootSector, boot),
            (Self.backupBootSector + Self.fsInfoSector, info),
        ] {
            reserved.put(bytes, at: Int(sector * Self.sectorSize))
        }

        // FAT entries 0 and 1: the media byte in the low 8 bits, then end-of-chain; entry 2 ends the
        // root directory's one-cluster chain. Only the low 28 bits of an entry are the FAT's.
        var fat = Bytes(count: Int(Self.sectorSize))
        fat.putLE(UInt32(0x0FFF_FF00) | UInt32(Self.media), at: 0)
        fat.putLE(UInt32(0x0FFF_FFFF), at: 4)
        fat.putLE(UInt32(0x0FFF_FFF8), at: 8)

        // The root directory: the volume label entry (attribute 0x08), its times; then free entries.
        var root = Bytes(count: Int(geometry.sectorsPerCluster * Self.sectorSize))
        let (time, date) = FATTime.encode(timestamp)
        root.put(label, at: 0)
        root[11] = 0x08
        root.putLE(time, at: 14)  // created
        root.putLE(date, at: 16)
        root.putLE(date, at: 18)  // last accessed
        root.putLE(time, at: 22)  // written
        root.putLE(date, at: 24)

        return (
            geometry,
            [
                Piece(sector: 0, bytes: reserved.storage),
                Piece(sector: geometry.reservedSectors, bytes: fat.storage),
                Piece(sector: geometry.reservedSectors + geometry.fatSectors, bytes: fat.storage),
                Piece(sector: geometry.dataStart, bytes: root.storage),
            ]
        )
    }

    /// The boot sector (fatgen103, "Boot Sector and BPB Structure" and "FAT32 Structure Starting at
    /// Offset 36").
    private func bootSector(_ geometry: Geometry, label: [UInt8], volume: UInt32) -> [UInt8] {
        var sector = Bytes(count: Int(Self.sectorSize))
        sector.put([0xEB, 0x58, 0x90], at: 0)  // jmp short to offset 0x5A, nop
        sector.putASCII("KILN    ", at: 3)  // OEM name
        sector.putLE(UInt16(Self.sectorSize), at: 11)
        sector[13] = UInt8(geometry.sectorsPerCluster)
        sector.putLE(UInt16(geometry.reservedSectors), at: 14)
        sector[16] = 2  // FATs
        // Root entries (17) and the 16-bit sector counts (19, 22) are zero on FAT32.
        sector[21] = Self.media
        sector.putLE(UInt16(63), at: 24)  // sectors per track and heads: the LBA-translated geometry
        sector.putLE(UInt16(255), at: 26)
        sector.putLE(UInt32(hiddenSectors), at: 28)
        sector.putLE(UInt32(geometry.totalSectors), at: 32)
        sector.putLE(UInt32(geometry.fatSectors), at: 36)
        // Flags (40) zero: the FATs are mirrored; version (42) 0.0.
        sector.putLE(Self.rootCluster, at: 44)
        sector.putLE(UInt16(Self.fsInfoSector), at: 48)
        sector.putLE(UInt16(Self.backupBootSector), at: 50)
        sector[64] = 0x80  // drive number: a hard disk
        sector[66] = 0x29  // extended boot signature: the volume id, label and type follow
        sector.putLE(volume, at: 67)
        sector.put(label, at: 71)
        sector.putASCII("FAT32   ", at: 82)
        // At 0x5A: int 0x18 (the BIOS's "not bootable, try the next device"), then hlt in a loop.
        sector.put([0xCD, 0x18, 0xF4, 0xEB, 0xFD], at: 0x5A)
        sector.put([0x55, 0xAA], at: 510)
        return sector.storage
    }

    /// The FSInfo sector (fatgen103, "FAT32 FSInfo Sector Structure"): every cluster but the root
    /// directory's is free; the next-free hint is the last cluster allocated, as Linux and mkfs.fat use it.
    private func fsInfo(_ geometry: Geometry) -> [UInt8] {
        var sector = Bytes(count: Int(Self.sectorSize))
        sector.putLE(UInt32(0x4161_5252), at: 0)
        sector.putLE(UInt32(0x6141_7272), at: 484)
        sector.putLE(UInt32(geometry.clusters - 1), at: 488)
        sector.putLE(Self.rootCluster, at: 492)
        sector.putLE(UInt32(0xAA55_0000), at: 508)
        return sector.storage
    }

    /// Formats `length` bytes at `offset` of the disk file at `path`.
    ///
    /// Besides the pieces `encode` gives, the FATs must read as zeros: where the file holds data there
    /// (a region used before), it is overwritten with zeros; holes are left as they are.
    package func format(path: String, offset: UInt64, length: UInt64) throws(DiskImageError) {
        guard offset % Self.sectorSize == 0 else {
            throw DiskImageError(.invalidArgument, "a file system region must start on a sector, not at byte \(offset)")
        }
        let (geometry, pieces) = try encode(bytes: length)
        let (fd, size) = try FileDescriptor.openForWriting(path)
        defer { try? fd.close() }
        guard offset <= size, length <= size - offset else {
            throw DiskImageError(
                .invalidArgument, "\(length) bytes at \(offset) lie past the end of \(path) (\(size) bytes)")
        }
        for fatIndex: UInt64 in 0..<2 {
            let first = geometry.reservedSectors + fatIndex * geometry.fatSectors + 1
            let start = offset + first * Self.sectorSize
            try zeroData(fd, path: path, in: start..<(start + (geometry.fatSectors - 1) * Self.sectorSize))
        }
        for piece in pieces {
            do {
                _ = try fd.writeAll(toAbsoluteOffset: Int64(offset + piece.sector * Self.sectorSize), piece.bytes)
            } catch {
                throw DiskImageError(.io, "cannot write the FAT32 file system to \(path): \(error)")
            }
        }
    }

    /// Overwrites with zeros whatever in `range` of the file holds data (SEEK_DATA, SEEK_HOLE); the whole
    /// range when the file system cannot tell.
    private func zeroData(_ fd: FileDescriptor, path: String, in range: Range<UInt64>) throws(DiskImageError) {
        // Linux's whences for sparse files (swift-system names them on Darwin and FreeBSD only).
        let seekData = FileDescriptor.SeekOrigin(rawValue: 3)
        let seekHole = FileDescriptor.SeekOrigin(rawValue: 4)
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var position = range.lowerBound
        while position < range.upperBound {
            var data = position
            var hole = range.upperBound
            do {
                data = UInt64(try fd.seek(offset: Int64(position), from: seekData))
                hole = UInt64(try fd.seek(offset: Int64(data), from: seekHole))
            } catch Errno.noSuchAddressOrDevice {
                return  // no data past `position`
            } catch {
                // The file system cannot tell: all of it may hold data.
                (data, hole) = (position, range.upperBound)
            }
            guard data < range.upperBound else { return }
            var at = data
            let end = min(hole, range.upperBound)
            while at < end {
                let count = Int(min(UInt64(zeros.count), end - at))
                do {
                    _ = try fd.writeAll(toAbsoluteOffset: Int64(at), zeros[0..<count])
                } catch {
                    throw DiskImageError(.io, "cannot write the FAT32 file system to \(path): \(error)")
                }
                at += UInt64(count)
            }
            position = end
        }
    }
}
