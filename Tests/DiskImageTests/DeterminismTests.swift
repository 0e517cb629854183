import Foundation
import Testing

@testable import DiskImage

/// The same input converted twice gives the same bytes; different inputs get different identifiers.
@Suite struct DeterminismTests {
    static let stamp: UInt64 = 1_700_000_000

    static func options(_ target: Target, seed: String? = nil) -> ExportOptions {
        var options = target.options
        options.timestamp = stamp
        options.seed = seed
        return options
    }

    @Test(arguments: Target.all)
    func convertingTwiceGivesIdenticalFiles(_ target: Target) throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let ext = target.options.format.rawValue
        // Same file name in two directories: a VMDK's descriptor names its own file.
        for run in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(run)", withIntermediateDirectories: false)
            try ImageConverter.convert(from: source, to: "\(dir)/\(run)/disk.\(ext)", options: Self.options(target))
        }
        #expect(FileManager.default.contentsEqual(atPath: "\(dir)/a/disk.\(ext)", andPath: "\(dir)/b/disk.\(ext)"))
    }

    /// Where each format keeps an identifier, and how long it is.
    static func identifier(of path: String, format: ImageFormat) throws -> [UInt8] {
        let file = try ImageFile(reading: path)
        switch format {
        case .vhd: return try file.readBytes(16, at: try file.size - 512 + 68).storage  // footer unique ID
        case .vdi: return try file.readBytes(16, at: UInt64(VDI.uuidCreateAt)).storage
        case .vhdx: return try file.readBytes(16, at: VHDX.headerOffsets[0] + 16).storage  // FileWriteGuid
        case .vmdk:
            let text = String(decoding: try file.readBytes(512, at: 512).storage, as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix("CID=") } ?? ""
            return Array(line.utf8)
        default: return []
        }
    }

    @Test(arguments: Target.all.filter { $0.options.format != .raw && $0.options.format != .qcow2 })
    func identifiersFollowTheContentOrTheSeed(_ target: Target) throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let first = try Fixture.sampleRaw(in: dir, name: "first.raw")
        let second = try Fixture.sampleRaw(in: dir, name: "second.raw")
        // One byte differs in the middle of a data block.
        let handle = try #require(FileHandle(forWritingAtPath: second))
        try handle.seek(toOffset: (4 << 20) + 12345)
        try handle.write(contentsOf: Data([0x5A]))
        try handle.close()

        let format = target.options.format
        let ext = format.rawValue
        try ImageConverter.convert(from: first, to: "\(dir)/1.\(ext)", options: Self.options(target))
        try ImageConverter.convert(from: second, to: "\(dir)/2.\(ext)", options: Self.options(target))
        let id1 = try Self.identifier(of: "\(dir)/1.\(ext)", format: format)
        let id2 = try Self.identifier(of: "\(dir)/2.\(ext)", format: format)
        #expect(!id1.isEmpty && id1 != id2, "different content must give different identifiers")

        // The same seed gives the same identifiers whatever the content.
        try ImageConverter.convert(from: first, to: "\(dir)/s1.\(ext)", options: Self.options(target, seed: "lab-07"))
        try ImageConverter.convert(from: second, to: "\(dir)/s2.\(ext)", options: Self.options(target, seed: "lab-07"))
        #expect(
            try Self.identifier(of: "\(dir)/s1.\(ext)", format: format)
                == Self.identifier(of: "\(dir)/s2.\(ext)", format: format))
    }

    @Test func vhdTimestampComesFromTheCaller() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        var options = ExportOptions(format: .vhd)
        options.timestamp = Self.stamp
        try ImageConverter.convert(from: source, to: "\(dir)/out.vhd", options: options)
        let file = try ImageFile(reading: "\(dir)/out.vhd")
        let footer = try VHDFooter.decode(try file.readBytes(512, at: try file.size - 512), path: "out.vhd")
        // VHD counts seconds from 2000-01-01 00:00 UTC (Unix time 946684800).
        #expect(UInt64(footer.timestamp) == Self.stamp - 946_684_800)
    }
}
