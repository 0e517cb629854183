import Foundation
import Testing

@testable import DiskImage

@Suite struct BadInputTests {
    private func convertFails(_ input: String, code: DiskImageError.Code, in dir: String) {
        let output = "\(dir)/out.qcow2"
        do {
            try ImageConverter.convert(from: input, to: output, options: ExportOptions(format: .qcow2))
            Issue.record("converting \(input) did not fail")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(error.message.contains(input), "the message names the file: \(error)")
        }
        // Nothing is left behind: no output, no temporary file.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        #expect(!left.contains { $0.contains("out.qcow2") }, "left behind: \(left)")
    }

    @Test(arguments: [ImageFormat.qcow2, .vmdk, .vhd, .vhdx, .vdi])
    func truncatedImageIsAClearError(_ format: ImageFormat) throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let image = "\(dir)/image.\(format.rawValue)"
        let sub: ImageSubformat? = format == .vmdk ? .streamOptimized : nil
        try ImageConverter.convert(from: source, to: image, options: ExportOptions(format: format, subformat: sub))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: image)[.size] as? UInt64)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        try handle.truncate(atOffset: size / 2)
        try handle.close()
        convertFails(image, code: format == .vhd ? .truncated : .truncated, in: dir)
    }

    @Test func corruptQcow2HeaderIsAClearError() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let image = "\(dir)/image.qcow2"
        try ImageConverter.convert(from: source, to: image, options: ExportOptions(format: .qcow2))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        try handle.seek(toOffset: 20)  // cluster_bits
        try handle.write(contentsOf: Data([0, 0, 0, 40]))
        try handle.close()
        convertFails(image, code: .corrupt, in: dir)
    }

    @Test func corruptVHDXChecksumsAreAClearError() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let image = "\(dir)/image.vhdx"
        try ImageConverter.convert(from: source, to: image, options: ExportOptions(format: .vhdx))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        for offset in VHDX.headerOffsets {
            try handle.seek(toOffset: offset + 100)
            try handle.write(contentsOf: Data([0xFF]))
        }
        try handle.close()
        convertFails(image, code: .corrupt, in: dir)
    }

    @Test func rawDataNamedQcow2IsAMismatch() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let lying = "\(dir)/disk.qcow2"
        try FileManager.default.moveItem(atPath: source, toPath: lying)
        convertFails(lying, code: .formatMismatch, in: dir)
    }

    @Test func vdiNamedVmdkIsAMismatch() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        try ImageConverter.convert(from: source, to: "\(dir)/disk.vdi", options: ExportOptions(format: .vdi))
        try FileManager.default.moveItem(atPath: "\(dir)/disk.vdi", toPath: "\(dir)/disk.vmdk")
        convertFails("\(dir)/disk.vmdk", code: .formatMismatch, in: dir)
        // Detection goes by content, so the same file opened without a name check is a VDI.
        #expect(try DiskImage.detectFormat("\(dir)/disk.vmdk") == .vdi)
    }

    @Test func missingFileIsAClearError() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        convertFails("\(dir)/absent.raw", code: .io, in: dir)
    }
}
