import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// What `kiln build --format` writes from the finished disk, judged by qemu-img and tar.
@Suite(.requires(.program("qemu-img")))
struct BuildOutputTests {
    @Test func everyOutputIsWrittenFromTheRawDisk() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-outputs-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A sparse 64 MiB disk with data at a few places.
        let raw = "\(dir)/disk.raw"
        #expect(FileManager.default.createFile(atPath: raw, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        for offset in [0, 5 << 20, 40 << 20 + 512] {
            try handle.seek(toOffset: UInt64(offset))
            try handle.write(contentsOf: Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ offset) }))
        }
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()

        let appliance = Appliance(name: "exports", os: OperatingSystem(name: .debian, version: "12"))
        func write(_ output: BuildOutput) throws -> String {
            try output.write(
                raw: raw, appliance: appliance, directory: dir, sourceDateEpoch: 1_700_000_000, progress: .none)
        }

        let qcow2 = try write(.disk(.qcow2))
        #expect(qcow2.hasSuffix("/exports.qcow2"))
        let (same, comparison) = try await Subprocess.output(["qemu-img", "compare", "-f", "raw", raw, qcow2])
        #expect(same.succeeded, "\(comparison)")

        let (_, ova) = try await Subprocess.output(["tar", "-tf", try write(.ova())])
        #expect(ova.split(separator: "\n") == ["exports.ovf", "exports.mf", "exports-disk1.vmdk"])

        let gceTar = try write(.gce)
        let (_, gce) = try await Subprocess.output(["tar", "-tzf", gceTar])
        #expect(gce.split(separator: "\n") == ["disk.raw"])
        // The build's SOURCE_DATE_EPOCH reaches the archive as a parameter, not through the environment.
        let (_, listing) = try await Subprocess.output(["tar", "--utc", "--full-time", "-tvzf", gceTar])
        #expect(listing.contains("2023-11-14 22:13:20 disk.raw"), "\(listing)")

        let (_, box) = try await Subprocess.output(["tar", "-tzf", try write(.vagrant)])
        #expect(Set(box.split(separator: "\n")) == ["metadata.json", "Vagrantfile", "box.img"])

        // The domain names the qcow2 written above by its absolute path; libvirt's schema judges it.
        let domain = try write(.libvirt)
        #expect(domain.hasSuffix("/exports.libvirt.xml"))
        #expect(try String(contentsOfFile: domain, encoding: .utf8).contains("<source file=\"\(qcow2)\"/>"))
        if Requirement.available(.program("virt-xml-validate")) {
            let (valid, report) = try await Subprocess.output(["virt-xml-validate", domain, "domain"])
            #expect(valid.succeeded, "\(report)")
        }

        #expect(BuildOutput(name: "libvirt") == .libvirt)
        #expect(BuildOutput(name: "vmdk") == .disk(.vmdk))
        #expect(BuildOutput(name: "iso") == nil)
    }
}
