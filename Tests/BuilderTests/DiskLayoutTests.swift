import Appliance
import Foundation
import KilnSupport
import Testing

@testable import Builder

/// The partition table kiln asks the guest's sfdisk for, judged by the host's sfdisk on a sparse file.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/sfdisk"), "needs sfdisk"))
struct DiskLayoutTests {
    static let hardware = Hardware(
        partitions: [
            Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .btrfs),
            Partition(mountPoint: "/srv", size: Size(mebibytes: 300), type: .xfs, grow: true),
            Partition(mountPoint: "swap", size: Size(mebibytes: 64), type: .swap),
        ], firmware: .hybrid)

    @Test func sfdiskMakesTheTableKilnDescribes() async throws {
        let layout = try DiskLayout(hardware: Self.hardware, seed: "layout-test")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-layout-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = "\(dir)/disk.raw"
        #expect(FileManager.default.createFile(atPath: disk, contents: nil))
        #expect(truncate(disk, off_t(layout.sizeMiB << 20)) == 0)
        let script = "\(dir)/layout.sfdisk"
        try layout.sfdiskScript.write(toFile: script, atomically: true, encoding: .utf8)

        let (made, madeOutput) = try await Subprocess.output(
            ["/bin/sh", "-c", "/usr/sbin/sfdisk --quiet \"$0\" < \"$1\"", disk, script])
        #expect(made == .exited(0), "\(madeOutput)")
        let (dumped, dump) = try await Subprocess.output(["/usr/sbin/sfdisk", "--json", disk])
        #expect(dumped == .exited(0), "\(dump)")
        let table = try JSONDecoder().decode(Dump.self, from: Data(dump.utf8)).partitiontable
        #expect(table.id.lowercased() == layout.diskGUID.lowercased())
        #expect(table.partitions.count == layout.slots.count)
        for (partition, slot) in zip(table.partitions, layout.slots) {
            #expect(partition.start == Int(slot.startMiB * 2048))
            #expect(partition.size == Int(slot.sizeMiB * 2048))
            #expect(partition.uuid.lowercased() == slot.partitionGUID.lowercased())
            #expect(partition.type.lowercased() == slot.typeGUID.lowercased())
            #expect(partition.name == slot.label)
        }
        // BIOS boot and the ESP come first; / on btrfs; /srv on xfs takes the rest.
        #expect(layout.slots.map(\.role) == ["bios", "esp", "/", "/srv", "swap"])
        #expect(layout.slots.map(\.filesystem) == [nil, .vfat, .btrfs, .xfs, .swap])
        #expect(layout.fstab.contains(" / btrfs defaults 0 0\n"))
        #expect(layout.fstab.contains(" /srv xfs defaults 0 0\n"))
    }

    @Test func xfsBelowItsMinimumIsRefusedBeforeTheBuild() {
        var hardware = Self.hardware
        hardware.partitions[1] = Partition(mountPoint: "/srv", size: Size(mebibytes: 200), type: .xfs)
        #expect(throws: BuilderError.self) { try DiskLayout(hardware: hardware, seed: "small-xfs") }
    }

    struct Dump: Decodable {
        struct Table: Decodable {
            var id: String
            var partitions: [Entry]
        }
        struct Entry: Decodable {
            var start: Int
            var size: Int
            var type: String
            var uuid: String
            var name: String
        }
        var partitiontable: Table
    }
}
