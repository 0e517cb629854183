import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// The GPT writer, judged by util-linux's sfdisk: the same script through sfdisk and through kiln gives
/// the same bytes, and nothing else in the disk is written.
@Suite struct GPTWriterTests {
    static let linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    static let esp = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

    static let sample = GPTWriter(
        diskGUID: "6f1d8b2e-3a44-4c5d-9e6f-7a8b9c0d1e2f",
        partitions: [
            GPTPartition(
                typeGUID: esp, partitionGUID: "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9", firstLBA: 2048,
                sectorCount: 4096, name: "esp"),
            GPTPartition(
                typeGUID: linux, partitionGUID: "1a1b2c3d-4e5f-4061-8273-8495a6b7c8d9", firstLBA: 6144,
                sectorCount: 100_000, name: "root"),
        ])

    /// The sfdisk script for a table: what DiskLayout.sfdiskScript writes for its slots.
    static func script(_ table: GPTWriter) -> String {
        var lines = [
            "label: gpt", "label-id: \(table.diskGUID)", "unit: sectors", "first-lba: \(table.firstUsableLBA)",
        ]
        for p in table.partitions {
            lines.append(
                "start=\(p.firstLBA), size=\(p.sectorCount), type=\(p.typeGUID), uuid=\(p.partitionGUID), name=\(p.name)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `table` with kiln and with sfdisk into two sparse files of `size` bytes, and expects the
    /// same first 34 and last 33 sectors, and no data anywhere else in kiln's file.
    func expectSameAsSfdisk(_ table: GPTWriter, size: UInt64, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let kiln = try SparseDisk("\(dir)/kiln.raw", size: size)
        let sfdisk = try SparseDisk("\(dir)/sfdisk.raw", size: size)
        try table.write(to: kiln.path)
        try await sfdisk.sfdisk(script: Self.script(table))
        let sectors = size / 512
        let head = 0..<GPTWriter.headSectors
        let tail = (sectors - GPTWriter.tailSectors)..<sectors
        #expect(try kiln.sectors(head) == sfdisk.sectors(head), "first 34 sectors", sourceLocation: sourceLocation)
        #expect(try kiln.sectors(tail) == sfdisk.sectors(tail), "last 33 sectors", sourceLocation: sourceLocation)
        #expect(kiln.size == size, sourceLocation: sourceLocation)
        #expect(
            kiln.onlyWritten([0..<(head.upperBound * 512), (tail.lowerBound * 512)..<(sectors * 512)]),
            "data at \(kiln.dataRanges)", sourceLocation: sourceLocation)
        #expect(try await kiln.sfdiskDump() == sfdisk.sfdiskDump(), sourceLocation: sourceLocation)
    }

    @Test(.requires(.program("sfdisk")))
    func sameBytesAsSfdisk() async throws {
        try await expectSameAsSfdisk(Self.sample, size: 64 << 20)
    }

    /// A size that is a whole number of neither MiB nor sectors: the partial last sector is not the
    /// disk's, and the last usable LBA is not aligned to anything.
    @Test(.requires(.program("sfdisk")))
    func anOddSizedDisk() async throws {
        try await expectSameAsSfdisk(Self.sample, size: (64 << 20) + 7 * 512 + 100)
        try await expectSameAsSfdisk(Self.sample, size: (64 << 20) + 2047 * 512)
    }

    /// Past 2 TiB the protective MBR's 32-bit size field is capped; the disk stays a sparse file.
    @Test(.requires(.program("sfdisk")))
    func diskLargerThanTheMBRCanCount() async throws {
        try await expectSameAsSfdisk(Self.sample, size: (2 << 40) + 512)
        try await expectSameAsSfdisk(Self.sample, size: 3 << 40)
    }

    /// A tiny disk: the protective MBR's CHS fields stay 0/0/2 and all ones as sfdisk writes them.
    @Test(.requires(.program("sfdisk")))
    func aDiskOfAFewMegabytes() async throws {
        var table = Self.sample
        table.partitions = [table.partitions[0]]
        try await expectSameAsSfdisk(table, size: 4 << 20)
    }

    /// Names longer than an entry's 36 UTF-16 code units lose their end, without a terminating NUL.
    @Test(.requires(.program("sfdisk")))
    func longNamesAreCutAsSfdiskCutsThem() async throws {
        var table = Self.sample
        table.partitions[1].name = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
        try await expectSameAsSfdisk(table, size: 64 << 20)
    }

    /// Sector 0's boot code is left as it was, as sfdisk leaves it; the sectors between the tables are
    /// not touched.
    @Test func onlyTheTablesSectorsChange() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let size: UInt64 = 64 << 20
        let disk = try SparseDisk("\(dir)/disk.raw", size: size)
        let boot = [UInt8](repeating: 0xAB, count: 440)
        let marks: [UInt64] = [34 * 512, 2047 * 512, size - 34 * 512]
        try disk.write(boot, at: 0)
        for mark in marks { try disk.write([UInt8](repeating: 0xCD, count: 512), at: mark) }
        try Self.sample.write(to: disk.path)
        #expect(try disk.read(440, at: 0) == boot)
        for mark in marks { #expect(try disk.read(512, at: mark) == [UInt8](repeating: 0xCD, count: 512)) }
        #expect(try disk.read(2, at: 510) == [0x55, 0xAA])
    }

    /// Kiln's own reader finds the partitions; both headers carry valid CRCs and point at each other.
    @Test func readsBackThroughKilnsReader() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let disk = try SparseDisk("\(dir)/disk.raw", size: 64 << 20)
        try Self.sample.write(to: disk.path)
        let table = try #require(try PartitionTable.read(from: DiskImage.open(disk.path)))
        #expect(table.scheme == .gpt)
        #expect(
            table.partitions == [
                PartitionEntry(number: 1, start: 2048 * 512, size: 4096 * 512, type: Self.esp, name: "esp"),
                PartitionEntry(number: 2, start: 6144 * 512, size: 100_000 * 512, type: Self.linux, name: "root"),
            ])
        let sectors = UInt64(64 << 20) / 512
        let encoded = try Self.sample.encode(diskSectors: sectors)
        for (header, current, alternate, entries) in [
            (Bytes(Array(encoded.primary[0..<512])), 1, sectors - 1, UInt64(2)),
            (Bytes(Array(encoded.backup.suffix(512))), sectors - 1, 1, sectors - 33),
        ] as [(Bytes, UInt64, UInt64, UInt64)] {
            var zeroed = header
            zeroed.putLE(UInt32(0), at: 16)
            #expect(header.getLE(UInt32.self, at: 16) == GPTWriter.crc(zeroed.storage[0..<92]))
            #expect(header.getLE(UInt64.self, at: 24) == current)
            #expect(header.getLE(UInt64.self, at: 32) == alternate)
            #expect(header.getLE(UInt64.self, at: 48) == sectors - 34)
            #expect(header.getLE(UInt64.self, at: 72) == entries)
        }
        #expect(encoded.primary[512...] == encoded.backup[0..<(128 * 128)])
    }

    /// zlib's CRC-32 is the IEEE one UEFI asks for: the check value of "123456789".
    @Test func crcIsTheIEEEOne() {
        #expect(GPTWriter.crc(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func refusesTablesSfdiskWouldRefuse() throws {
        let sectors: UInt64 = 131_072
        var overlap = Self.sample
        overlap.partitions[1].firstLBA = 6143
        var outside = Self.sample
        outside.partitions[1].sectorCount = sectors
        var beforeFirst = Self.sample
        beforeFirst.partitions[0].firstLBA = 2047
        var badGUID = Self.sample
        badGUID.partitions[0].partitionGUID = "not-a-guid"
        var empty = Self.sample
        empty.partitions[0].sectorCount = 0
        var tooMany = Self.sample
        tooMany.partitions = (0..<129).map { index in
            GPTPartition(
                typeGUID: Self.linux, partitionGUID: "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9",
                firstLBA: 2048 + UInt64(index), sectorCount: 1, name: "")
        }
        for table in [overlap, outside, beforeFirst, badGUID, empty, tooMany] {
            #expect(throws: DiskImageError.self) { try table.encode(diskSectors: sectors) }
        }
        #expect(throws: DiskImageError.self) { try Self.sample.encode(diskSectors: 2048) }
        // A partition may end on the last usable LBA.
        var full = Self.sample
        full.partitions[1].sectorCount = sectors - 34 - 6144 + 1
        #expect(throws: Never.self) { try full.encode(diskSectors: sectors) }
    }

    /// A file that is not the size the caller expects is refused before anything is written.
    @Test func refusesAFileOfAnotherSize() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let disk = try SparseDisk("\(dir)/disk.raw", size: 64 << 20)
        #expect(throws: DiskImageError.self) { try Self.sample.write(to: disk.path, diskSize: 65 << 20) }
        #expect(disk.dataRanges.isEmpty)
    }
}
