import KilnSupport

/// VHDX structures (Microsoft [MS-VHDX] 2.2); every field is little-endian, GUIDs in Microsoft's
/// mixed-endian layout.
enum VHDX {
    static let headerOffsets: [UInt64] = [64 << 10, 128 << 10]
    static let regionTableOffsets: [UInt64] = [192 << 10, 256 << 10]
    static let logOffset: UInt64 = 1 << 20
    static let logLength: UInt32 = 1 << 20
    static let metadataOffset: UInt64 = 2 << 20
    static let metadataLength: UInt32 = 1 << 20
    static let batOffset: UInt64 = 3 << 20
    static let mib: UInt64 = 1 << 20

    // Region and metadata item GUIDs ([MS-VHDX] 2.2.3.2, 2.6.2).
    static let batRegion = GUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
    static let metadataRegion = GUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    static let fileParameters = GUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
    static let virtualDiskSize = GUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
    static let virtualDiskID = GUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
    static let logicalSectorSize = GUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
    static let physicalSectorSize = GUID("CDA348C7-445D-4471-9CC9-E9885251C556")
    static let parentLocator = GUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")

    // BAT entry states ([MS-VHDX] 2.5.1.1): the low 3 bits; the file offset in MiB from bit 20.
    static let blockNotPresent: UInt64 = 0
    static let blockFullyPresent: UInt64 = 6
    static let blockPartiallyPresent: UInt64 = 7

    /// The file type identifier: "vhdxfile" and a UTF-16LE creator name.
    static func fileIdentifier() -> Bytes {
        var b = Bytes(count: 64 << 10)
        b.putASCII("vhdxfile", at: 0)
        for (i, unit) in "kiln".utf16.enumerated() { b.putLE(unit, at: 8 + i * 2) }
        return b
    }

    /// A 4 KiB header with its CRC-32C ([MS-VHDX] 2.2.2).
    static func header(sequence: UInt64, fileWrite: GUID, dataWrite: GUID) -> Bytes {
        var b = Bytes(count: 4096)
        b.putASCII("head", at: 0)
        b.putLE(sequence, at: 8)
        b.put(fileWrite.bytes, at: 16)
        b.put(dataWrite.bytes, at: 32)
        // LogGuid (48..<64) stays zero: there is no log to replay.
        b.putLE(UInt16(0), at: 64)  // log version
        b.putLE(UInt16(1), at: 66)  // version
        b.putLE(logLength, at: 68)
        b.putLE(logOffset, at: 72)
        b.putLE(CRC32C.checksum(b.storage), at: 4)
        return b
    }

    /// The 64 KiB region table naming the BAT and metadata regions ([MS-VHDX] 2.2.3).
    static func regionTable(batLength: UInt32) -> Bytes {
        var b = Bytes(count: 64 << 10)
        b.putASCII("regi", at: 0)
        b.putLE(UInt32(2), at: 8)
        let entries: [(GUID, UInt64, UInt32)] = [
            (batRegion, batOffset, batLength), (metadataRegion, metadataOffset, metadataLength),
        ]
        for (i, (guid, offset, length)) in entries.enumerated() {
            let base = 16 + i * 32
            b.put(guid.bytes, at: base)
            b.putLE(offset, at: base + 16)
            b.putLE(length, at: base + 24)
            b.putLE(UInt32(1), at: base + 28)  // required
        }
        b.putLE(CRC32C.checksum(b.storage), at: 4)
        return b
    }

    /// The metadata region: table at its start, item values from 64 KiB ([MS-VHDX] 2.6).
    static func metadata(blockSize: UInt32, virtualSize: UInt64, diskID: GUID) -> Bytes {
        var b = Bytes(count: Int(metadataLength))
        b.putASCII("metadata", at: 0)
        // Flags: bit 0 IsUser, bit 1 IsVirtualDisk, bit 2 IsRequired.
        let items: [(GUID, UInt32, UInt32, UInt32)] = [
            (fileParameters, 0, 8, 0b100),
            (virtualDiskSize, 8, 8, 0b110),
            (virtualDiskID, 16, 16, 0b110),
            (logicalSectorSize, 32, 4, 0b110),
            (physicalSectorSize, 36, 4, 0b110),
        ]
        b.putLE(UInt16(items.count), at: 10)
        let values = 64 << 10
        for (i, (guid, offset, length, flags)) in items.enumerated() {
            let base = 32 + i * 32
            b.put(guid.bytes, at: base)
            b.putLE(UInt32(values) + offset, at: base + 16)
            b.putLE(length, at: base + 20)
            b.putLE(flags, at: base + 24)
        }
        b.putLE(blockSize, at: values)
        b.putLE(UInt32(0), at: values + 4)  // file parameter flags: not LeaveBlocksAllocated, no parent
        b.putLE(virtualSize, at: values + 8)
        b.put(diskID.bytes, at: values + 16)
        b.putLE(UInt32(512), at: values + 32)
        b.putLE(UInt32(4096), at: values + 36)
        return b
    }

    /// Sector bitmap entries interleave the payload entries, one per chunk ([MS-VHDX] 2.5).
    static func chunkRatio(blockSize: UInt32) -> UInt64 { (UInt64(1) << 23) * 512 / UInt64(blockSize) }
}

/// Writes a dynamic VHDX: file identifier, two headers, two region tables, an empty log, metadata,
/// the block allocation table, then the payload blocks appended in order.
final class VHDXWriter: BlockWriter {
    let file: ImageFile
    let blockSize = 2 << 20
    let compression: BlockCompression? = nil
    let size: UInt64
    private var bat: [UInt64]
    private let chunkRatio: UInt64
    private let batLength: UInt64
    private let out: AppendBuffer

    init(file: ImageFile, virtualSize: UInt64) throws(DiskImageError) {
        self.file = file
        size = virtualSize.roundedUp(to: 512)
        guard size <= 64 << 40 else { throw DiskImageError(.invalidArgument, "a VHDX holds at most 64 TiB") }
        chunkRatio = VHDX.chunkRatio(blockSize: UInt32(blockSize))
        let payload = max(1, (size + UInt64(blockSize) - 1) / UInt64(blockSize))
        let entries = payload + (payload - 1) / chunkRatio
        bat = Array(repeating: VHDX.blockNotPresent, count: Int(entries))
        batLength = (entries * 8).roundedUp(to: VHDX.mib)
        out = try AppendBuffer(file: file, position: VHDX.batOffset + batLength)
    }

    func write(block index: UInt64, data: UnsafeRawBufferPointer, compressed: [UInt8]?) throws(DiskImageError) {
        let offset = out.position
        try out.append(data)
        bat[Int(index + index / chunkRatio)] = (offset / VHDX.mib) << 20 | VHDX.blockFullyPresent
    }

    var storesIdentifiers: Bool { true }

    func finish(_ identity: ImageIdentity) throws(DiskImageError) {
        try out.flush()
        try file.write(VHDX.fileIdentifier(), at: 0)
        let fileWrite = identity.guid("vhdx file write guid")
        let dataWrite = identity.guid("vhdx data write guid")
        for (i, offset) in VHDX.headerOffsets.enumerated() {
            try file.write(VHDX.header(sequence: UInt64(i + 1), fileWrite: fileWrite, dataWrite: dataWrite), at: offset)
        }
        let regions = VHDX.regionTable(batLength: UInt32(batLength))
        for offset in VHDX.regionTableOffsets { try file.write(regions, at: offset) }
        try file.write(
            VHDX.metadata(blockSize: UInt32(blockSize), virtualSize: size, diskID: identity.guid("vhdx disk id")),
            at: VHDX.metadataOffset)
        var table = Bytes(count: Int(batLength))
        for (i, entry) in bat.enumerated() where entry != 0 { table.putLE(entry, at: i * 8) }
        try file.write(table, at: VHDX.batOffset)
        // The log region must exist even when empty; make sure the file covers it.
        if try file.size < out.position { try file.truncate(to: out.position) }
    }
}
