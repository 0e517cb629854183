import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// The partition table kiln asks the guest's sfdisk for, judged by the host's sfdisk on a sparse file.
@Suite(.requires(.program("sfdisk")))
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
        // Encrypted, the LUKS2 header's 16 MiB come off the file system.
        hardware.partitions[1] = Partition(
            mountPoint: "/srv", size: Size(mebibytes: 310), type: .xfs, passphrase: "12345678")
        #expect(throws: BuilderError.self) { try DiskLayout(hardware: hardware, seed: "small-xfs") }
        hardware.partitions[1].size = Size(mebibytes: 316)
        #expect(throws: Never.self) { try DiskLayout(hardware: hardware, seed: "small-xfs") }
    }

    /// An encrypted / gets a plain /boot for GRUB; crypttab names each container by its LUKS UUID, and
    /// only / is opened by the initramfs.
    @Test func anEncryptedRootGetsAPlainBootAndACrypttab() throws {
        let hardware = Hardware(
            partitions: [
                Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4, passphrase: "root secret"),
                Partition(mountPoint: "/srv", size: Size(mebibytes: 400), type: .xfs, passphrase: "srv secret"),
                Partition(mountPoint: "swap", size: Size(mebibytes: 64), type: .swap),
            ], firmware: .hybrid)
        let layout = try DiskLayout(hardware: hardware, seed: "luks")
        #expect(layout.slots.map(\.role) == ["bios", "esp", "/boot", "/", "/srv", "swap"])
        let boot = try #require(layout.slots.first { $0.role == "/boot" })
        #expect(boot.filesystem == .ext4 && boot.encryptionID == nil && boot.sizeMiB == 512)
        let root = try #require(layout.slots.first { $0.role == "/" })
        let srv = try #require(layout.slots.first { $0.role == "/srv" })
        let rootID = try #require(root.encryptionID)
        let srvID = try #require(srv.encryptionID)
        #expect(rootID != srvID && rootID != root.filesystemID)
        #expect(
            layout.crypttab
                == "# written by kiln: <target name> <source device> <key file> <options>\n"
                + "root_crypt UUID=\(rootID) none luks,initramfs\nsrv_crypt UUID=\(srvID) none luks\n")
        // fstab names the file systems inside the containers, which exist once they are open.
        #expect(layout.fstab.contains("UUID=\(try #require(root.filesystemID)) / ext4 errors=remount-ro 0 1\n"))
        #expect(layout.fstab.contains(" /boot ext4 errors=remount-ro 0 2\n"))
        // The same seed gives the same containers' UUIDs; the secrets appear nowhere in the layout.
        #expect(try DiskLayout(hardware: hardware, seed: "luks") == layout)
        #expect(!"\(layout)".contains("secret"))
        #expect(try DiskLayout(hardware: Self.hardware, seed: "plain").crypttab == nil)
    }

    @Test func anEncryptedBootIsRefused() {
        let hardware = Hardware(
            partitions: [
                Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4, passphrase: "root secret"),
                Partition(mountPoint: "/boot", size: Size(mebibytes: 512), type: .ext4, passphrase: "boot secret"),
            ], firmware: .bios)
        #expect(throws: BuilderError.self) { try DiskLayout(hardware: hardware, seed: "boot") }
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
