import CKilnZlib
import SystemPackage

/// One partition for `GPTWriter`, in 512-byte sectors.
package struct GPTPartition: Sendable, Equatable {
    /// The partition type GUID, text form.
    package var typeGUID: String
    /// The partition's own GUID, text form.
    package var partitionGUID: String
    package var firstLBA: UInt64
    package var sectorCount: UInt64
    /// The partition name; its first 36 UTF-16 code units are kept, as sfdisk keeps them.
    package var name: String

    package init(typeGUID: String, partitionGUID: String, firstLBA: UInt64, sectorCount: UInt64, name: String) {
        self.typeGUID = typeGUID
        self.partitionGUID = partitionGUID
        self.firstLBA = firstLBA
        self.sectorCount = sectorCount
        self.name = name
    }
}

/// Writes a GUID partition table into a disk file: the bytes util-linux's sfdisk (2.38) writes for a
/// script of `label: gpt`, `label-id:`, `unit: sectors`, `first-lba:` and one `start=, size=, type=,
/// uuid=, name=` line per partition.
///
/// Layout: UEFI 2.10 §5.2.3 (protective MBR), §5.3.2 (header), §5.3.3 (entries); every integer is
/// little-endian, every GUID mixed-endian. With 512-byte sectors the 128 entries of 128 bytes fill LBA
/// 2-33 and, for the backup, the 32 sectors before the backup header in the disk's last sector. What
/// sfdisk chooses where the spec leaves room, found by running it on sparse files: the protective
/// MBR's CHS fields are 0/0/2 and FF FF FF whatever the disk's size, its size field is the disk's
/// sectors but one, capped at 0xFFFFFFFF; the disk signature is zero and the boot code (the first 440
/// bytes) is left as the file holds it; the last usable LBA is the one before the backup entries.
package struct GPTWriter: Sendable {
    package static let sectorSize: UInt64 = 512
    /// Sectors of the table at the start of the disk: the protective MBR, the header and the entries.
    package static let headSectors: UInt64 = 34
    /// Sectors of the table at the end of the disk: the backup entries and header.
    package static let tailSectors: UInt64 = 33

    static let entryCount = 128
    static let entrySize = 128
    static let entrySectors: UInt64 = 32
    /// Where the protective MBR's part starts: the boot code before it is not the table's.
    static let mbrTableOffset = 440
    static let nameUnits = 36

    package var diskGUID: String
    package var firstUsableLBA: UInt64
    /// In the order of their entries (partition numbers 1, 2, ...).
    package var partitions: [GPTPartition]

    package init(diskGUID: String, firstUsableLBA: UInt64 = 2048, partitions: [GPTPartition]) {
        self.diskGUID = diskGUID
        self.firstUsableLBA = firstUsableLBA
        self.partitions = partitions
    }

    /// The table's bytes for a disk of `diskSectors` sectors.
    package struct Encoded: Sendable, Equatable {
        /// Sector 0 from byte 440: disk signature, the four MBR partition entries, 0x55AA.
        package var mbrTail: [UInt8]
        /// LBA 1 to 33: the primary header and entries.
        package var primary: [UInt8]
        /// The last 33 sectors: the backup entries, then the backup header.
        package var backup: [UInt8]
    }

    /// The last sector a partition may use on a disk of `diskSectors`: the one before the backup entries.
    package static func lastUsableLBA(diskSectors: UInt64) -> UInt64 {
        diskSectors >= headSectors ? diskSectors - headSectors : 0
    }

    /// Encodes the table for a disk of `diskSectors` sectors.
    ///
    /// - Throws: `invalidArgument` for a GUID that does not parse, more than 128 partitions, a partition
    ///   that is empty, overlaps another or lies outside the usable sectors, or a disk too small.
    package func encode(diskSectors: UInt64) throws(DiskImageError) -> Encoded {
        guard let disk = GUID(validating: diskGUID) else {
            throw DiskImageError(.invalidArgument, "disk GUID '\(diskGUID)' is not a GUID")
        }
        guard firstUsableLBA >= Self.headSectors else {
            throw DiskImageError(.invalidArgument, "first usable LBA \(firstUsableLBA) lies inside the GPT")
        }
        let lastUsable = Self.lastUsableLBA(diskSectors: diskSectors)
        guard diskSectors >= Self.headSectors + Self.tailSectors, lastUsable >= firstUsableLBA else {
            throw DiskImageError(
                .invalidArgument,
                "a disk of \(diskSectors) sectors has no room for partitions from LBA \(firstUsableLBA)")
        }
        let entries = try encodeEntries(firstUsable: firstUsableLBA, lastUsable: lastUsable)
        let entriesCRC = Self.crc(entries)
        let last = diskSectors - 1
        var primary = header(
            disk: disk, current: 1, alternate: last, entriesLBA: 2, lastUsable: lastUsable, entriesCRC: entriesCRC)
        primary += entries
        var backup = entries
        backup += header(
            disk: disk, current: last, alternate: 1, entriesLBA: last - Self.entrySectors, lastUsable: lastUsable,
            entriesCRC: entriesCRC)
        return Encoded(mbrTail: Self.protectiveMBR(diskSectors: diskSectors), primary: primary, backup: backup)
    }

    /// Writes the table into the disk file (or block device) at `path`, sized as the disk beforehand.
    ///
    /// Only the table's sectors are written, and of sector 0 only what follows the boot code: a sparse
    /// file stays sparse, and nothing else in it changes.
    ///
    /// - Parameter diskSize: when given, the file must be exactly this many bytes.
    package func write(to path: String, diskSize: UInt64? = nil) throws(DiskImageError) {
        let (fd, size) = try FileDescriptor.openForWriting(path)
        defer { try? fd.close() }
        if let diskSize, diskSize != size {
            throw DiskImageError(.invalidArgument, "\(path) is \(size) bytes, not the disk's \(diskSize)")
        }
        let sectors = size / Self.sectorSize
        let table = try encode(diskSectors: sectors)
        let writes: [(UInt64, [UInt8])] = [
            (UInt64(Self.mbrTableOffset), table.mbrTail),
            (Self.sectorSize, table.primary),
            ((sectors - Self.tailSectors) * Self.sectorSize, table.backup),
        ]
        for (offset, bytes) in writes {
            do {
                _ = try fd.writeAll(toAbsoluteOffset: Int64(offset), bytes)
            } catch {
                throw DiskImageError(.io, "cannot write the partition table to \(path): \(error)")
            }
        }
    }

    /// 128 entries (UEFI §5.3.3): type GUID at 0, partition GUID at 16, first and last LBA at 32 and
    /// 40, attributes at 48 (none), name at 56 (36 UTF-16LE code units, NUL-padded, not terminated when
    /// full).
    private func encodeEntries(firstUsable: UInt64, lastUsable: UInt64) throws(DiskImageError) -> [UInt8] {
        guard partitions.count <= Self.entryCount else {
            throw DiskImageError(
                .invalidArgument, "\(partitions.count) partitions do not fit in a GPT of \(Self.entryCount) entries")
        }
        var table = Bytes(count: Self.entryCount * Self.entrySize)
        var ranges: [(first: UInt64, last: UInt64, number: Int)] = []
        for (index, partition) in partitions.enumerated() {
            let number = index + 1
            guard let type = GUID(validating: partition.typeGUID), type != .zero else {
                throw DiskImageError(
                    .invalidArgument, "partition \(number): type '\(partition.typeGUID)' is not a partition type GUID")
            }
            guard let unique = GUID(validating: partition.partitionGUID) else {
                throw DiskImageError(
                    .invalidArgument, "partition \(number): '\(partition.partitionGUID)' is not a GUID")
            }
            let first = partition.firstLBA
            guard partition.sectorCount > 0, first >= firstUsable, first <= lastUsable,
                partition.sectorCount - 1 <= lastUsable - first
            else {
                throw DiskImageError(
                    .invalidArgument,
                    "partition \(number): \(partition.sectorCount) sectors from LBA \(first) do not lie within "
                        + "the usable sectors \(firstUsable)-\(lastUsable)")
            }
            let last = first + partition.sectorCount - 1
            if let other = ranges.first(where: { $0.first <= last && first <= $0.last }) {
                throw DiskImageError(.invalidArgument, "partition \(number) overlaps partition \(other.number)")
            }
            ranges.append((first, last, number))

            let base = index * Self.entrySize
            table.put(type.bytes, at: base)
            table.put(unique.bytes, at: base + 16)
            table.putLE(first, at: base + 32)
            table.putLE(last, at: base + 40)
            var units = Array(partition.name.utf16.prefix(Self.nameUnits))
            // Cut between the halves of a surrogate pair, the first half alone would not decode.
            if let final = units.last, UTF16.isLeadSurrogate(final) { units.removeLast() }
            for (at, unit) in units.enumerated() { table.putLE(unit, at: base + 56 + at * 2) }
        }
        return table.storage
    }

    /// One header sector (UEFI §5.3.2): its CRC32 covers the 92 header bytes with the CRC field zero.
    private func header(
        disk: GUID, current: UInt64, alternate: UInt64, entriesLBA: UInt64, lastUsable: UInt64, entriesCRC: UInt32
    ) -> [UInt8] {
        var header = Bytes(count: Int(Self.sectorSize))
        header.putASCII("EFI PART", at: 0)
        header.putLE(UInt32(0x0001_0000), at: 8)  // revision 1.0
        header.putLE(UInt32(92), at: 12)  // header size
        header.putLE(current, at: 24)
        header.putLE(alternate, at: 32)
        header.putLE(firstUsableLBA, at: 40)
        header.putLE(lastUsable, at: 48)
        header.put(disk.bytes, at: 56)
        header.putLE(entriesLBA, at: 72)
        header.putLE(UInt32(Self.entryCount), at: 80)
        header.putLE(UInt32(Self.entrySize), at: 84)
        header.putLE(entriesCRC, at: 88)
        header.putLE(Self.crc(header.storage[0..<92]), at: 16)
        return header.storage
    }

    /// Sector 0 from byte 440 (UEFI §5.2.3): a zero disk signature, one partition of type 0xEE from LBA 1
    /// over the rest of the disk (its size capped at 0xFFFFFFFF), then the 0x55AA signature.
    static func protectiveMBR(diskSectors: UInt64) -> [UInt8] {
        var mbr = Bytes(count: 512 - mbrTableOffset)
        let entry = 446 - mbrTableOffset
        // Not bootable; first CHS: cylinder 0, head 0, sector 2; type; last CHS: all ones.
        mbr.put([0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF], at: entry)
        mbr.putLE(UInt32(1), at: entry + 8)
        mbr.putLE(UInt32(min(diskSectors - 1, 0xFFFF_FFFF)), at: entry + 12)
        mbr.put([0x55, 0xAA], at: 510 - mbrTableOffset)
        return mbr.storage
    }

    /// zlib's CRC-32 (the IEEE polynomial, as UEFI asks for).
    static func crc<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt32 {
        let value = bytes.withContiguousStorageIfAvailable { buffer in
            crc32(0, buffer.baseAddress, uInt(buffer.count))
        }
        return UInt32(value ?? Array(bytes).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
    }
}

extension FileDescriptor {
    /// Opens the disk file (or block device) at `path` to write into it in place, with its size.
    static func openForWriting(_ path: String) throws(DiskImageError) -> (FileDescriptor, UInt64) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: .closeOnExec)
        } catch {
            throw DiskImageError(.io, "cannot open \(path): \(error)")
        }
        do {
            return (fd, UInt64(try fd.seek(offset: 0, from: .end)))
        } catch {
            try? fd.close()
            throw DiskImageError(.io, "cannot size \(path): \(error)")
        }
    }
}
