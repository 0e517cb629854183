/// A partition as an image's MBR or GPT records it (a description's partitions are Appliance's
/// `Partition`).
package struct PartitionEntry: Sendable, Equatable {
    package var number: Int
    /// Byte offset in the guest disk.
    package var start: UInt64
    package var size: UInt64
    /// GPT: the type GUID (upper-case text); MBR: the type byte as two hex digits.
    package var type: String
    /// GPT partition name (UTF-16LE on disk).
    package var name: String
}

/// The partition table of a guest disk, read through any `DiskReader`.
package struct PartitionTable: Sendable, Equatable {
    package enum Scheme: String, Sendable { case mbr, gpt }

    package var scheme: Scheme
    package var partitions: [PartitionEntry]

    /// Reads an MBR or GPT (GPT when the MBR is protective); nil when sector 0 has no 0x55AA signature.
    package static func read(from reader: any DiskReader) throws(DiskImageError) -> PartitionTable? {
        guard reader.virtualSize >= 512 else { return nil }
        let mbr = Bytes(try reader.read(count: 512, at: 0))
        guard mbr[510] == 0x55 && mbr[511] == 0xAA else { return nil }
        // MBR partition entries: 4 x 16 bytes at 446; type at +4, LBA start and count little-endian at +8, +12.
        var primary: [PartitionEntry] = []
        var protective = false
        for i in 0..<4 {
            let base = 446 + i * 16
            let type = mbr[base + 4]
            if type == 0 { continue }
            if type == 0xEE { protective = true }
            let start = UInt64(mbr.getLE(UInt32.self, at: base + 8)) * 512
            let size = UInt64(mbr.getLE(UInt32.self, at: base + 12)) * 512
            primary.append(
                PartitionEntry(number: i + 1, start: start, size: size, type: String(format2: type), name: ""))
        }
        if protective, reader.virtualSize >= 1024, let gpt = try readGPT(reader) { return gpt }
        return PartitionTable(scheme: .mbr, partitions: primary)
    }

    /// GPT header at LBA 1 (UEFI spec 5.3.2): "EFI PART", entries' LBA at 72, count at 80, entry size at 84;
    /// all little-endian.
    private static func readGPT(_ reader: any DiskReader) throws(DiskImageError) -> PartitionTable? {
        let header = Bytes(try reader.read(count: 512, at: 512))
        guard header.ascii(0, 8) == "EFI PART" else { return nil }
        let entriesLBA = header.getLE(UInt64.self, at: 72)
        let count = Int(min(header.getLE(UInt32.self, at: 80), 1024))
        let entrySize = Int(header.getLE(UInt32.self, at: 84))
        guard entrySize >= 128, entrySize <= 4096 else { return nil }
        // Every LBA is checked against the disk before it is turned into bytes: a hostile header must
        // not overflow (found by `make fuzz`).
        let sectors = reader.virtualSize / 512
        guard entriesLBA < sectors, UInt64(count * entrySize) <= (sectors - entriesLBA) * 512 else { return nil }
        let table = Bytes(try reader.read(count: count * entrySize, at: entriesLBA * 512))
        var partitions: [PartitionEntry] = []
        for i in 0..<count {
            let base = i * entrySize
            let type = GUID(mixedEndian: table.slice(base, 16))
            if type == .zero { continue }
            let first = table.getLE(UInt64.self, at: base + 32)
            let last = table.getLE(UInt64.self, at: base + 40)
            guard first <= last, last < sectors else { continue }
            var units: [UInt16] = []
            for j in 0..<36 {
                let unit = table.getLE(UInt16.self, at: base + 56 + j * 2)
                if unit == 0 { break }
                units.append(unit)
            }
            partitions.append(
                PartitionEntry(
                    number: i + 1, start: first * 512, size: (last - first + 1) * 512,
                    type: type.description, name: String(decoding: units, as: UTF16.self)))
        }
        return PartitionTable(scheme: .gpt, partitions: partitions)
    }
}

extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
