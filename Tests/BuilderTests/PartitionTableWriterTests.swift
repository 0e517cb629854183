import Appliance
import DiskImage
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// The partition table the host writes for a description's layout, judged by util-linux's sfdisk: the
/// same bytes as sfdisk makes from `sfdiskScript` (what the builder guest used to run), and sfdisk reads
/// the partitions back.
@Suite(.requires(.program("sfdisk")))
struct PartitionTableWriterTests {
    static let appliances = "\(KilnProgram.packageRoot)/Appliances"

    /// /boot, /srv on xfs taking what `disk_size` leaves, swap; the firmware as asked.
    static func servers(firmware: String) -> String {
        """
        name: layout-\(firmware)
        os:
          name: debian
          version: "13"
        hardware:
          disk_size: 6001MiB
          firmware: \(firmware)
          partitions:
            "/boot":
              size: 512MiB
              type: ext4
            "/":
              size: 3GiB
              type: ext4
            swap:
              size: 256MiB
            "/srv":
              size: 300MiB
              type: xfs
              grow: true
        """
    }

    static func layout(description path: String) throws -> DiskLayout {
        let appliance = try ApplianceLoader().load(path)
        return try DiskLayout(hardware: appliance.hardware, seed: "gpt:\(appliance.name)")
    }

    static func layout(yaml: String, in dir: String) throws -> DiskLayout {
        let path = "\(dir)/appliance.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try layout(description: path)
    }

    /// kiln's table and sfdisk's, each on a sparse file of the layout's size: the same first 34 and
    /// last 33 sectors, nothing else written by kiln, and sfdisk reading kiln's back as the layout.
    func expectSfdisksBytes(_ layout: DiskLayout, in dir: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let size = UInt64(layout.sizeMiB) << 20
        let kiln = try SparseDisk("\(dir)/kiln.raw", size: size)
        let sfdisk = try SparseDisk("\(dir)/sfdisk.raw", size: size)
        try layout.writePartitionTable(to: kiln.path)
        try await sfdisk.sfdisk(script: layout.sfdiskScript)

        let sectors = size / 512
        let head = 0..<GPTWriter.headSectors
        let tail = (sectors - GPTWriter.tailSectors)..<sectors
        #expect(try kiln.sectors(head) == sfdisk.sectors(head), "first 34 sectors", sourceLocation: sourceLocation)
        #expect(try kiln.sectors(tail) == sfdisk.sectors(tail), "last 33 sectors", sourceLocation: sourceLocation)
        #expect(
            kiln.onlyWritten([0..<(head.upperBound * 512), (tail.lowerBound * 512)..<size]),
            "data at \(kiln.dataRanges)", sourceLocation: sourceLocation)

        let verify = try await kiln.sfdiskVerify()
        #expect(verify.clean, "\(verify.output)", sourceLocation: sourceLocation)
        let dump = try await kiln.sfdiskDump()
        #expect(try await dump == sfdisk.sfdiskDump(), sourceLocation: sourceLocation)
        #expect(dump.contains("label-id: \(layout.diskGUID.uppercased())\n"), sourceLocation: sourceLocation)
        let lines = dump.split(separator: "\n").filter { $0.hasPrefix("DISK") }
        #expect(lines.count == layout.slots.count, "\(dump)", sourceLocation: sourceLocation)
        for (line, slot) in zip(lines, layout.slots) {
            let expected =
                "start=\(slot.startMiB * 2048), size=\(slot.sizeMiB * 2048), type=\(slot.typeGUID.uppercased()), "
                + "uuid=\(slot.partitionGUID.uppercased()), name=\"\(slot.label)\""
            let fields = line.split(separator: ":", maxSplits: 1).last.map {
                $0.split(separator: ",").map { $0.replacingOccurrences(of: " ", with: "") }.joined(separator: ", ")
            }
            #expect(fields == expected, sourceLocation: sourceLocation)
        }
    }

    @Test func theDefaultAppliance() async throws {
        let folder = try TemporaryFolder()
        let layout = try Self.layout(description: "\(Self.appliances)/debian-minimal.yaml")
        #expect(layout.slots.map(\.role) == ["bios", "esp", "/"])
        try await expectSfdisksBytes(layout, in: folder.path)
    }

    @Test(arguments: ["bios", "uefi", "hybrid"])
    func bootSrvSwapAndXfs(firmware: String) async throws {
        let folder = try TemporaryFolder()
        let layout = try Self.layout(yaml: Self.servers(firmware: firmware), in: folder.path)
        let partitions = ["/boot", "/", "swap", "/srv"]
        let roles: [String] =
            switch firmware {
            case "bios": ["bios"] + partitions
            case "uefi": ["esp"] + partitions
            default: ["bios", "esp"] + partitions
            }
        #expect(layout.slots.map(\.role) == roles)
        #expect(layout.sizeMiB == 6001)
        try await expectSfdisksBytes(layout, in: folder.path)
    }

    /// arm64's root partition has a type of its own.
    @Test func anArm64Appliance() async throws {
        let folder = try TemporaryFolder()
        let layout = try Self.layout(description: "\(Self.appliances)/debian-arm64.yaml")
        #expect(layout.slots.map(\.role) == ["esp", "/"])
        #expect(layout.slots.last?.typeGUID == DiskLayout.arm64RootType)
        try await expectSfdisksBytes(layout, in: folder.path)
    }

    /// The disk file must be the layout's size: a table for another size would put the backup elsewhere.
    @Test func aFileOfAnotherSizeIsRefused() throws {
        let folder = try TemporaryFolder()
        let layout = try Self.layout(description: "\(Self.appliances)/debian-minimal.yaml")
        let disk = try SparseDisk("\(folder.path)/disk.raw", size: (UInt64(layout.sizeMiB) << 20) + 512)
        #expect(throws: BuilderError.self) { try layout.writePartitionTable(to: disk.path) }
        #expect(disk.dataRanges.isEmpty)
    }
}
