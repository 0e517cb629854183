import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// The FAT32 formatter: its geometry against what mkfs.fat chooses, its fields by hand from fatgen103,
/// and the file system judged by dosfstools (fsck.fat), mtools and blkid.
@Suite struct FAT32FormatterTests {
    static let esp = FAT32Formatter(volumeID: "809B9115", label: "esp", hiddenSectors: 2048, timestamp: 1_700_000_000)
    static let mib: UInt64 = 1 << 20

    /// mkfs.fat 4.2 on 522 240 sectors (255 MiB, kiln's ESP) makes 512-byte clusters, 32 reserved
    /// sectors, FATs of 4017 sectors and 514 174 clusters: the same here. Larger regions take larger
    /// clusters at the sizes mkfs.fat changes them, with the data area on a cluster boundary.
    @Test func geometryAsMkfsFatChoosesIt() throws {
        #expect(
            try FAT32Formatter.geometry(bytes: 255 * Self.mib)
                == FAT32Formatter.Geometry(
                    totalSectors: 522_240, sectorsPerCluster: 1, reservedSectors: 32, fatSectors: 4017,
                    clusters: 514_174))
        for (mebibytes, perCluster) in [
            (33, 1), (260, 1), (261, 8), (300, 8), (8192, 8), (8193, 16), (16385, 32), (32769, 64), (1 << 21 - 1, 64),
        ] as [(UInt64, UInt64)] {
            let geometry = try FAT32Formatter.geometry(bytes: mebibytes * Self.mib)
            #expect(geometry.sectorsPerCluster == perCluster, "\(mebibytes) MiB")
            #expect(geometry.reservedSectors >= 32 && geometry.dataStart % perCluster == 0, "\(mebibytes) MiB")
            // The FATs map every cluster, and one sector less would not map the clusters it leaves.
            #expect((geometry.clusters + 2) * 4 <= geometry.fatSectors * 512, "\(mebibytes) MiB")
            let smaller = geometry.fatSectors - 1
            let more = (geometry.totalSectors - (32 + 2 * smaller).roundedUp(to: perCluster)) / perCluster
            #expect((more + 2) * 4 > smaller * 512, "\(mebibytes) MiB")
            #expect(
                geometry.dataStart + geometry.clusters * perCluster <= geometry.totalSectors
                    && geometry.totalSectors - geometry.dataStart - geometry.clusters * perCluster < perCluster)
        }
        // Fewer than 65 525 clusters would be FAT16 to every reader; past 2 TiB the sector count overflows.
        #expect(throws: DiskImageError.self) { try FAT32Formatter.geometry(bytes: 32 * Self.mib) }
        #expect(throws: DiskImageError.self) { try FAT32Formatter.geometry(bytes: 2 << 40) }
    }

    /// The boot sector, FSInfo, FATs and label entry, field by field (fatgen103).
    @Test func fieldsOfAnESP() throws {
        let (geometry, pieces) = try Self.esp.encode(bytes: 255 * Self.mib)
        #expect(pieces.map(\.sector) == [0, 32, 32 + 4017, 8066])
        let reserved = Bytes(pieces[0].bytes)
        #expect(reserved.count == 32 * 512)
        let boot = Bytes(reserved.slice(0, 512))
        #expect(boot.slice(0, 3) == [0xEB, 0x58, 0x90])
        #expect(boot.getLE(UInt16.self, at: 11) == 512)
        #expect(boot[13] == 1)
        #expect(boot.getLE(UInt16.self, at: 14) == 32)
        #expect(boot[16] == 2 && boot.getLE(UInt16.self, at: 17) == 0 && boot.getLE(UInt16.self, at: 19) == 0)
        #expect(boot[21] == 0xF8 && boot.getLE(UInt16.self, at: 22) == 0)
        #expect(boot.getLE(UInt32.self, at: 28) == 2048)  // hidden sectors: the partition's start
        #expect(boot.getLE(UInt32.self, at: 32) == 522_240)
        #expect(boot.getLE(UInt32.self, at: 36) == 4017)
        #expect(boot.getLE(UInt32.self, at: 44) == 2)  // root directory cluster
        #expect(boot.getLE(UInt16.self, at: 48) == 1 && boot.getLE(UInt16.self, at: 50) == 6)
        #expect(boot[66] == 0x29 && boot.getLE(UInt32.self, at: 67) == 0x809B_9115)
        #expect(boot.ascii(71, 11) == "ESP        " && boot.ascii(82, 8) == "FAT32   ")
        #expect(boot[510] == 0x55 && boot[511] == 0xAA)
        let info = Bytes(reserved.slice(512, 512))
        #expect(info.getLE(UInt32.self, at: 0) == 0x4161_5252 && info.getLE(UInt32.self, at: 484) == 0x6141_7272)
        #expect(info.getLE(UInt32.self, at: 488) == UInt32(geometry.clusters - 1))
        #expect(info.getLE(UInt32.self, at: 508) == 0xAA55_0000)
        // Backups at 6 and 7; every other reserved sector zero.
        #expect(reserved.slice(6 * 512, 1024) == reserved.slice(0, 1024))
        for sector in [2, 3, 4, 5] + Array(8..<32) {
            #expect(reserved.slice(sector * 512, 512).allSatisfy { $0 == 0 }, "sector \(sector)")
        }
        for fat in [pieces[1], pieces[2]] {
            let entries = Bytes(fat.bytes)
            #expect(entries.getLE(UInt32.self, at: 0) == 0x0FFF_FFF8)
            #expect(entries.getLE(UInt32.self, at: 4) == 0x0FFF_FFFF)
            #expect(entries.getLE(UInt32.self, at: 8) == 0x0FFF_FFF8)
            #expect(entries.slice(12, 500).allSatisfy { $0 == 0 })
        }
        let root = Bytes(pieces[3].bytes)
        let (time, date) = FATTime.encode(1_700_000_000)
        #expect(root.ascii(0, 11) == "ESP        " && root[11] == 0x08)
        #expect(root.getLE(UInt16.self, at: 22) == time && root.getLE(UInt16.self, at: 24) == date)
        #expect(root.slice(32, 480).allSatisfy { $0 == 0 })
    }

    @Test func refusesLabelsAndIdsMkfsFatWouldRefuse() {
        for label in ["", "twelve chars", "a.b", "é", "x:y"] {
            var formatter = Self.esp
            formatter.label = label
            #expect(throws: DiskImageError.self, "\(label)") { try formatter.encode(bytes: 255 * Self.mib) }
        }
        for id in ["809B911", "809B91150", "809B-911", "GGGGGGGG"] {
            var formatter = Self.esp
            formatter.volumeID = id
            #expect(throws: DiskImageError.self, "\(id)") { try formatter.encode(bytes: 255 * Self.mib) }
        }
        var formatter = Self.esp
        formatter.label = "var-tmp 1"
        #expect(throws: Never.self) { try formatter.encode(bytes: 255 * Self.mib) }
    }

    /// An ESP at 1 MiB and a 300 MiB vfat partition after it, as kiln lays them out: fsck.fat finds
    /// them clean, blkid names them, mtools writes a file and a folder into each and reads them back,
    /// and fsck.fat still finds them clean. Nothing but the file systems' own sectors is written.
    @Test(.requires(.program("fsck.fat"), .program("mcopy"), .program("blkid")))
    func judgedByFsckMtoolsAndBlkid() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let disk = try SparseDisk("\(dir)/disk.raw", size: 600 * Self.mib)
        let data = FAT32Formatter(
            volumeID: "1234ABCD", label: "data", hiddenSectors: 256 * 2048, timestamp: 1_700_000_000)
        let volumes = [
            (Self.esp, Self.mib, 255 * Self.mib, "ESP", "809B-9115"),
            (data, 256 * Self.mib, 300 * Self.mib, "DATA", "1234-ABCD"),
        ]
        var written: [Range<UInt64>] = []
        for (formatter, offset, length, _, _) in volumes {
            try formatter.format(path: disk.path, offset: offset, length: length)
            for piece in try formatter.encode(bytes: length).pieces {
                let start = offset + piece.sector * 512
                written.append(start..<(start + UInt64(piece.bytes.count)))
            }
        }
        #expect(disk.onlyWritten(written), "data at \(disk.dataRanges)")

        let file = "\(dir)/hello.txt"
        try "hello from kiln\n".write(toFile: file, atomically: true, encoding: .utf8)
        for (index, (_, offset, length, label, uuid)) in volumes.enumerated() {
            let part = try await disk.extract(offset, length, to: "\(dir)/part\(index).raw")
            let fresh = try await part.fsckFAT(verbose: true)
            #expect(fresh.clean, "\(fresh.output)")
            #expect(fresh.output.contains("32 bit entries"), "\(fresh.output)")
            #expect(fresh.output.contains("\(offset / 512) hidden sectors"), "\(fresh.output)")

            let tags = try await disk.blkid(offset, length)
            #expect(tags["TYPE"] == "vfat" && tags["VERSION"] == "FAT32", "\(tags)")
            #expect(tags["UUID"] == uuid && tags["LABEL"] == label && tags["LABEL_FATBOOT"] == label, "\(tags)")

            try await disk.mtools("mmd", offset: offset, ["::/EFI"])
            try await disk.mtools("mcopy", offset: offset, [file, "::/EFI/HELLO.TXT"])
            let listing = try await disk.mtools("mdir", offset: offset, ["::/"])
            #expect(listing.contains("Volume in drive : is \(label)") && listing.contains(uuid), "\(listing)")
            let back = try await disk.mtools("mtype", offset: offset, ["::/EFI/HELLO.TXT"])
            #expect(back == "hello from kiln\n")
            let after = try await disk.extract(offset, length, to: "\(dir)/part\(index)-after.raw").fsckFAT()
            #expect(after.clean, "\(after.output)")
            #expect(after.output.contains(": 3 files, 3/"), "\(after.output)")  // the label, EFI, HELLO.TXT
        }
    }

    /// A region that held something else before: the FATs read as zeros, so fsck.fat finds one empty
    /// file system, not the old bytes as clusters in use.
    @Test(.requires(.program("fsck.fat")))
    func overwritesWhatTheRegionHeld() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let disk = try SparseDisk("\(dir)/disk.raw", size: 64 * Self.mib)
        let old = [UInt8](repeating: 0x5A, count: Int(4 * Self.mib))
        try disk.write(old, at: 0)
        let formatter = FAT32Formatter(volumeID: "00C0FFEE", label: "reused", hiddenSectors: 0, timestamp: 0)
        try formatter.format(path: disk.path, offset: 0, length: 64 * Self.mib)
        let result = try await disk.fsckFAT()
        #expect(result.clean, "\(result.output)")
        #expect(result.output.contains("1 files, 1/"), "\(result.output)")
    }

    /// The same inputs give the same bytes.
    @Test func deterministic() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let first = try SparseDisk("\(dir)/a.raw", size: 300 * Self.mib)
        let second = try SparseDisk("\(dir)/b.raw", size: 300 * Self.mib)
        try Self.esp.format(path: first.path, offset: Self.mib, length: 255 * Self.mib)
        try Self.esp.format(path: second.path, offset: Self.mib, length: 255 * Self.mib)
        #expect(first.dataRanges == second.dataRanges)
        for range in first.dataRanges {
            #expect(
                try first.read(Int(range.count), at: range.lowerBound)
                    == second.read(Int(range.count), at: range.lowerBound))
        }
    }

    @Test func refusesARegionPastTheEndOfTheFile() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let disk = try SparseDisk("\(dir)/disk.raw", size: 255 * Self.mib)
        #expect(throws: DiskImageError.self) {
            try Self.esp.format(path: disk.path, offset: Self.mib, length: 255 * Self.mib)
        }
        #expect(disk.dataRanges.isEmpty)
    }
}
