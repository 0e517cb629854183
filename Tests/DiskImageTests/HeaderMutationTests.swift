import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import DiskImage

/// One header field: where it is, how wide, and its byte order.
private struct Field {
    var offset: Int
    var width: Int
    var bigEndian: Bool
}

/// A checksum to mend after a field changes, so that the mutation reaches the code past the check.
private enum Mend {
    case none
    /// VHD footer or dynamic header: one's complement byte sum over `length` bytes at `start`, stored
    /// big-endian at `start + at`.
    case vhd(start: Int, length: Int, at: Int)
    /// VHDX region table: CRC-32C over 64 KiB at `start`, stored little-endian at `start + 4`.
    case vhdx(start: Int)
}

/// The fields of one image to mutate.
private struct Sites {
    var fields: [Field]
    var mends: [Mend] = []
}

/// Every header field of every image format, set to edge values (zero, all ones, the top bit, the
/// largest signed value, one more than before) in images made by kiln and by qemu-img: kiln must end
/// each run with success or an error (exit 0 or 1), never a trap (SIGILL from an arithmetic overflow),
/// a hang, or a file left under the output's name after a failure. kiln runs as a subprocess so that a
/// trap is seen as the signal that ends it.
@Suite(
    .requires(Fixture.hasQemuImg, "qemu-img (Debian package qemu-utils)"),
    .requires(KilnProgram.isBuilt, "the kiln binary"))
struct HeaderMutationTests {
    static let images: [(name: String, maker: String, format: String, options: [String])] = [
        ("qcow2", "kiln", "qcow2", []), ("qcow2", "qemu", "qcow2", []),
        ("vmdk", "kiln", "vmdk", []), ("vmdk-stream", "kiln", "vmdk", ["--compress"]), ("vmdk", "qemu", "vmdk", []),
        ("vhd", "kiln", "vhd", []), ("vhd-fixed", "kiln", "vhd", ["--subformat", "fixed"]), ("vhd", "qemu", "vpc", []),
        ("vhdx", "kiln", "vhdx", []), ("vhdx", "qemu", "vhdx", []),
        ("vdi", "kiln", "vdi", []), ("vdi", "qemu", "vdi", []),
    ]

    @Test(arguments: images.indices)
    func mutatedHeadersNeverTrap(_ index: Int) async throws {
        let image = Self.images[index]
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = "\(dir)/source.raw"
        var data = Data(count: 5 << 20)
        for (i, offset) in [0, 511, 1 << 20, (3 << 20) + 12345].enumerated() {
            data.replaceSubrange(offset..<offset + 600, with: Data(repeating: UInt8(0x41 + i), count: 600))
        }
        try data.write(to: URL(fileURLWithPath: source))
        let ext = image.format == "vpc" ? "vhd" : image.format
        let original = "\(dir)/original.\(ext)"
        if image.maker == "kiln" {
            let made = try KilnProgram.run(
                ["convert", source, original, "--format", image.format] + image.options, timeout: .seconds(120))
            try #require(made.code == 0, "\(made)")
        } else {
            let (code, text) = try await Fixture.qemuImg(["convert", "-f", "raw", "-O", image.format, source, original])
            try #require(code == 0, "\(text)")
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
        let sites = try Self.sites(image.name, bytes)
        #expect(!sites.fields.isEmpty)

        var runs = 0
        for field in sites.fields {
            let current = Self.value(bytes, field)
            let top: UInt64 = field.width == 8 ? 1 << 63 : 1 << UInt64(field.width * 8 - 1)
            let ones: UInt64 = field.width == 8 ? .max : (1 << UInt64(field.width * 8)) - 1
            for value in Set([0, ones, top, top - 1, (current &+ 1) & ones]) where value != current {
                var mutated = bytes
                Self.put(&mutated, field, value)
                for mend in sites.mends { Self.mend(&mutated, mend) }
                let input = "\(dir)/mutated.\(ext)"
                try Data(mutated).write(to: URL(fileURLWithPath: input))
                let output = "\(dir)/out.qcow2"
                let run = try KilnProgram.run(["convert", input, output], timeout: .seconds(60))
                runs += 1
                let what =
                    "\(image.maker) \(image.name): field at \(field.offset) (\(field.width) bytes) "
                    + "= 0x\(String(value, radix: 16))"
                #expect(run.signal == nil, "\(what): kiln died of signal \(run.signal ?? 0): \(run.errors)")
                #expect(!run.timedOut, "\(what): kiln hung")
                #expect(run.code == 0 || run.code == 1, "\(what): exit \(String(describing: run.code))")
                if run.code == 1 {
                    #expect(run.errors.contains("kiln: error:"), "\(what): \(run.errors)")
                    #expect(!FileManager.default.fileExists(atPath: output), "\(what): output left after a failure")
                }
                let hidden = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
                    $0.hasPrefix(".")
                }
                #expect(hidden.isEmpty, "\(what): temporary files left: \(hidden)")
                try? FileManager.default.removeItem(atPath: output)
            }
        }
        #expect(runs > 10)
    }

    private static func value(_ b: [UInt8], _ f: Field) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<f.width {
            let byte = UInt64(b[f.offset + (f.bigEndian ? i : f.width - 1 - i)])
            v = v << 8 | byte
        }
        return v
    }

    private static func put(_ b: inout [UInt8], _ f: Field, _ value: UInt64) {
        for i in 0..<f.width {
            let shift = UInt64(8 * (f.bigEndian ? f.width - 1 - i : i))
            b[f.offset + i] = UInt8(truncatingIfNeeded: value >> shift)
        }
    }

    private static func mend(_ b: inout [UInt8], _ mend: Mend) {
        switch mend {
        case .none: break
        case .vhd(let start, let length, let at):
            for i in 0..<4 { b[start + at + i] = 0 }
            var sum: UInt32 = 0
            for i in start..<(start + length) { sum &+= UInt32(b[i]) }
            put(&b, Field(offset: start + at, width: 4, bigEndian: true), UInt64(~sum))
        case .vhdx(let start):
            for i in 0..<4 { b[start + 4 + i] = 0 }
            let crc = CRC32C.checksum(Array(b[start..<(start + (64 << 10))]))
            put(&b, Field(offset: start + 4, width: 4, bigEndian: false), UInt64(crc))
        }
    }

    private static func fields(_ base: Int, _ list: [(Int, Int)], bigEndian: Bool) -> [Field] {
        list.map { Field(offset: base + $0.0, width: $0.1, bigEndian: bigEndian) }
    }

    /// Where the header fields of each format lie in `b`.
    private static func sites(_ name: String, _ b: [UInt8]) throws -> Sites {
        let end = b.count
        switch name {
        case "qcow2":
            // qcow2.txt "Header": every field up to header_length.
            let list = [
                (4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8), (56, 4),
                (60, 4), (64, 8), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4),
            ]
            return Sites(fields: fields(0, list, bigEndian: true))
        case "vmdk", "vmdk-stream":
            // Hosted sparse extent header, and for streamOptimized the footer copy before the last sector.
            let list = [
                (4, 4), (8, 4), (12, 8), (20, 8), (28, 8), (36, 8), (44, 4), (48, 8), (56, 8), (64, 8), (77, 2),
            ]
            var all = fields(0, list, bigEndian: false)
            if name == "vmdk-stream" { all += fields(end - 1024, list, bigEndian: false) }
            return Sites(fields: all)
        case "vhd", "vhd-fixed":
            // Footer: data offset, original and current size, disk type; the dynamic header's table
            // offset, entries and block size. Checksums mended.
            let footer = [(16, 8), (40, 8), (48, 8), (56, 2), (60, 4)]
            var all = fields(end - 512, footer, bigEndian: true)
            var mends: [Mend] = [.vhd(start: end - 512, length: 512, at: 64)]
            if name == "vhd" {
                all += fields(0, footer, bigEndian: true)
                all += fields(512, [(8, 8), (16, 8), (28, 4), (32, 4)], bigEndian: true)
                mends += [.vhd(start: 0, length: 512, at: 64), .vhd(start: 512, length: 1024, at: 36)]
            }
            return Sites(fields: all, mends: mends)
        case "vhdx":
            // Both region tables (entry count, each entry's offset and length, CRC mended), the metadata
            // table's entries and the values they point to.
            var all: [Field] = []
            var mends: [Mend] = []
            var metadata: Int?
            for table in VHDX.regionTableOffsets.map(Int.init) {
                all.append(Field(offset: table + 8, width: 4, bigEndian: false))
                for i in 0..<2 {
                    all += fields(table + 16 + i * 32, [(16, 8), (24, 4), (28, 4)], bigEndian: false)
                }
                mends.append(.vhdx(start: table))
                let guid = GUID(mixedEndian: Array(b[(table + 16)..<(table + 32)]))
                let other = GUID(mixedEndian: Array(b[(table + 48)..<(table + 64)]))
                let at = guid == VHDX.metadataRegion ? 16 : other == VHDX.metadataRegion ? 48 : nil
                if let at { metadata = Int(value(b, Field(offset: table + at + 16, width: 8, bigEndian: false))) }
            }
            let meta = try #require(metadata, "no metadata region")
            all.append(Field(offset: meta + 10, width: 2, bigEndian: false))
            let count = Int(value(b, Field(offset: meta + 10, width: 2, bigEndian: false)))
            for i in 0..<min(count, 8) {
                let entry = meta + 32 + i * 32
                all += fields(entry, [(16, 4), (20, 4)], bigEndian: false)
                let item = meta + Int(value(b, Field(offset: entry + 16, width: 4, bigEndian: false)))
                all.append(Field(offset: item, width: 8, bigEndian: false))
            }
            return Sites(fields: all, mends: mends)
        case "vdi":
            let list = [
                (0x44, 4), (0x48, 4), (0x4C, 4), (0x154, 4), (0x158, 4), (0x168, 4), (0x170, 8),
                (0x178, 4), (0x17C, 4), (0x180, 4), (0x184, 4),
            ]
            return Sites(fields: fields(0, list, bigEndian: false))
        default:
            throw DiskImageError(.invalidArgument, "no sites for \(name)")
        }
    }
}
