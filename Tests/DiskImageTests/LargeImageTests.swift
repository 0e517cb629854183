import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// Virtual sizes at the edges of what a format holds, from tiny sparse files.
@Suite(
    .requires(Fixture.hasQemuImg, "qemu-img (Debian package qemu-utils)"),
    .requires(KilnProgram.isBuilt, "the kiln binary"))
struct LargeImageTests {
    private func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// A 64 TiB VDI (its block map alone is 256 MiB): kiln writes it, qemu-img checks it, kiln reads it.
    @Test func a64TiBVDIRoundTrips() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let (created, text) = try await Fixture.qemuImg(["create", "-f", "qcow2", "\(dir)/big.qcow2", "64T"])
        try #require(created == 0, "\(text)")
        let run = try KilnProgram.run(["convert", "\(dir)/big.qcow2", "\(dir)/big.vdi"], timeout: .seconds(300))
        #expect(run.code == 0, "\(run)")
        let (code, check) = try await Fixture.qemuImg(["check", "-f", "vdi", "\(dir)/big.vdi"])
        #expect(code == 0, "qemu-img check: \(check)")
        let info = try await Fixture.info("\(dir)/big.vdi", format: "vdi")
        #expect((info["virtual-size"] as? NSNumber)?.uint64Value == 64 << 40)
        let reader = try DiskImage.open("\(dir)/big.vdi")
        #expect(reader.virtualSize == 64 << 40)
        #expect(try reader.dataRanges().isEmpty)
    }

    /// 1 PiB is more than a VDI's 32-bit data offset allows: a clear error, and nothing left behind.
    @Test func a1PiBQcow2ToVDIIsAClearError() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let (created, text) = try await Fixture.qemuImg(["create", "-f", "qcow2", "\(dir)/huge.qcow2", "1P"])
        try #require(created == 0, "\(text)")
        let run = try KilnProgram.run(["convert", "\(dir)/huge.qcow2", "\(dir)/huge.vdi"], timeout: .seconds(120))
        #expect(run.signal == nil, "kiln died of signal \(run.signal ?? 0)")
        #expect(run.code == 1, "\(run)")
        #expect(run.errors.contains("a VDI holds at most"), "\(run.errors)")
        #expect(files(dir) == ["huge.qcow2"], "left behind: \(files(dir))")
        // The same image converts to a format that holds it.
        let raw = try KilnProgram.run(
            ["convert", "\(dir)/huge.qcow2", "\(dir)/huge.qcow2.copy", "--format", "qcow2"],
            timeout: .seconds(120))
        #expect(raw.code == 0, "\(raw)")
    }
}
