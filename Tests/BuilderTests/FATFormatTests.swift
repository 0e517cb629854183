import Appliance
import DiskImage
import Foundation
import KilnSupport
import KilnTestSupport
import SystemPackage
import Testing

@testable import Builder

/// The host-made FAT32 file systems of a layout (the ESP, a description's vfat partition), on a disk
/// with the host-written partition table: what the guest's mkfs.fat gave, as blkid and fsck.fat see it.
@Suite(.requires(.program("fsck.fat"), .program("blkid"), .program("sfdisk")))
struct FATFormatTests {
    static let epoch: Int64 = 1_700_000_000

    static let description = """
        name: vfat-data
        os:
          name: debian
          version: "13"
        hardware:
          firmware: uefi
          partitions:
            "/":
              size: 2GiB
              type: ext4
            "/srv/data":
              size: 300MiB
              type: vfat
        """

    @Test func theESPAndAVfatPartition() async throws {
        let folder = try TemporaryFolder()
        let path = "\(folder.path)/appliance.yaml"
        try Self.description.write(toFile: path, atomically: true, encoding: .utf8)
        let appliance = try ApplianceLoader().load(path)
        let layout = try DiskLayout(hardware: appliance.hardware, seed: "fat:\(appliance.name)")
        let fat = layout.slots.filter { $0.filesystem == .vfat }
        #expect(fat.map(\.role) == ["esp", "/srv/data"])

        let disk = try SparseDisk("\(folder.path)/disk.raw", size: UInt64(layout.sizeMiB) << 20)
        try layout.writePartitionTable(to: disk.path)
        for slot in fat { try layout.formatFAT(slot, into: disk.path, sourceDateEpoch: Self.epoch) }
        let verify = try await disk.sfdiskVerify()
        #expect(verify.clean, "\(verify.output)")

        let descriptor = try FileDescriptor.open(FilePath(disk.path), .readWrite)
        defer { try? descriptor.close() }
        for (index, slot) in fat.enumerated() {
            let offset = UInt64(slot.startMiB) << 20
            let length = UInt64(slot.sizeMiB) << 20
            let tags = try await disk.blkid(offset, length)
            #expect(tags["TYPE"] == "vfat" && tags["VERSION"] == "FAT32", "\(tags)")
            #expect(tags["UUID"] == slot.filesystemUUID, "\(tags)")
            #expect(tags["LABEL"] == slot.label.uppercased(), "\(tags)")
            let part = try await disk.extract(offset, length, to: "\(folder.path)/part\(index).raw")
            let fsck = try await part.fsckFAT(verbose: true)
            #expect(fsck.clean, "\(fsck.output)")
            #expect(fsck.output.contains("\(slot.startMiB * 2048) hidden sectors"), "\(fsck.output)")
            // The label's times are SOURCE_DATE_EPOCH already: the build's normalising pass finds nothing
            // to change.
            let region = DiskRegion(
                descriptor: descriptor, path: disk.path, start: slot.startMiB << 20, length: slot.sizeMiB << 20)
            #expect(try FATTimestamps(region: region, epoch: Self.epoch).apply() == 0)
        }
    }

    @Test func onlyAPlainVfatSlotIsFormatted() throws {
        let layout = try DiskLayout(
            hardware: Hardware(partitions: [Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4)]),
            seed: "fat-refusal")
        let root = try #require(layout.slots.first { $0.role == "/" })
        #expect(throws: BuilderError.self) {
            try layout.formatFAT(root, into: "/nonexistent", sourceDateEpoch: Self.epoch)
        }
    }
}
