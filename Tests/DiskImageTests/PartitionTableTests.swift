import Foundation
import Testing

@testable import DiskImage

/// PartitionEntry tables laid out by hand from the MBR and UEFI (GPT) layouts; no partitioning tool is
/// installed here to make them.
@Suite struct PartitionTableTests {
    private func image(_ bytes: [(Int, [UInt8])], size: Int = 1 << 20) throws -> (String, String) {
        let dir = try Fixture.directory()
        var data = [UInt8](repeating: 0, count: size)
        for (offset, chunk) in bytes { data.replaceSubrange(offset..<(offset + chunk.count), with: chunk) }
        let path = "\(dir)/disk.raw"
        try Data(data).write(to: URL(fileURLWithPath: path))
        return (dir, path)
    }

    private func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    private func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    @Test func mbrPartitions() throws {
        // Entry 2 (offset 446 + 16): type 0x83 at +4, first LBA 2048 and 1024 sectors at +8 and +12.
        let entry = [UInt8](repeating: 0, count: 4) + [0x83, 0, 0, 0] + le32(2048) + le32(1024)
        let (dir, path) = try image([(446 + 16, entry), (510, [0x55, 0xAA])], size: 2 << 20)
        defer { Fixture.cleanup(dir) }
        let table = try #require(try PartitionTable.read(from: DiskImage.open(path)))
        #expect(table.scheme == .mbr)
        #expect(
            table.partitions == [PartitionEntry(number: 2, start: 2048 * 512, size: 1024 * 512, type: "83", name: "")])
    }

    @Test func gptPartitionsBehindAProtectiveMBR() throws {
        let protective = [UInt8](repeating: 0, count: 4) + [0xEE, 0, 0, 0] + le32(1) + le32(2047)
        var header = Array("EFI PART".utf8) + [UInt8](repeating: 0, count: 64)
        header += le64(2) + le32(128) + le32(128)  // entries at LBA 2: 128 entries of 128 bytes
        let esp = GUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
        var entry = esp.bytes + GUID.random().bytes + le64(34) + le64(34 + 99) + le64(0)
        for unit in "EFI system".utf16 { entry += withUnsafeBytes(of: unit.littleEndian, Array.init) }
        entry += [UInt8](repeating: 0, count: 128 - entry.count)
        let (dir, path) = try image([(446, protective), (510, [0x55, 0xAA]), (512, header), (1024, entry)])
        defer { Fixture.cleanup(dir) }
        let table = try #require(try PartitionTable.read(from: DiskImage.open(path)))
        #expect(table.scheme == .gpt)
        #expect(
            table.partitions == [
                PartitionEntry(
                    number: 1, start: 34 * 512, size: 100 * 512, type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                    name: "EFI system")
            ])
    }

    @Test func noSignatureMeansNoTable() throws {
        let (dir, path) = try image([])
        defer { Fixture.cleanup(dir) }
        #expect(try PartitionTable.read(from: DiskImage.open(path)) == nil)
    }
}
