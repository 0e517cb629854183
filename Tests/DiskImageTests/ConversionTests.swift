import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// One target of a conversion and what qemu-img must say about it.
struct Target: CustomStringConvertible, Sendable {
    var name: String
    var options: ExportOptions
    var qemuFormat: String
    /// qemu-img check supports the format.
    var checkable: Bool
    /// `format-specific.data.create-type` (VMDK) expected from qemu-img info.
    var createType: String?
    /// The virtual size is rounded up to this (fixed VHD: 1 MiB).
    var sizeAlignment: UInt64 = 512

    var description: String { name }

    static let all: [Target] = [
        Target(name: "raw", options: ExportOptions(format: .raw), qemuFormat: "raw", checkable: false),
        Target(name: "qcow2", options: ExportOptions(format: .qcow2), qemuFormat: "qcow2", checkable: true),
        Target(
            name: "qcow2-compressed", options: ExportOptions(format: .qcow2, compress: true), qemuFormat: "qcow2",
            checkable: true),
        Target(
            name: "vmdk-monolithicSparse", options: ExportOptions(format: .vmdk, subformat: .monolithicSparse),
            qemuFormat: "vmdk", checkable: true, createType: "monolithicSparse"),
        Target(
            name: "vmdk-streamOptimized", options: ExportOptions(format: .vmdk, subformat: .streamOptimized),
            qemuFormat: "vmdk", checkable: true, createType: "streamOptimized"),
        Target(
            name: "vhd-fixed", options: ExportOptions(format: .vhd, subformat: .fixed), qemuFormat: "vpc",
            checkable: false,
            sizeAlignment: 1 << 20),
        Target(
            name: "vhd-dynamic", options: ExportOptions(format: .vhd, subformat: .dynamic), qemuFormat: "vpc",
            checkable: false),
        Target(name: "vhdx", options: ExportOptions(format: .vhdx), qemuFormat: "vhdx", checkable: true),
        Target(name: "vdi", options: ExportOptions(format: .vdi), qemuFormat: "vdi", checkable: true),
    ]
}

@Suite(.requires(Fixture.hasQemuImg, "qemu-img (Debian package qemu-utils) as the judge"))
struct ConversionTests {
    @Test(arguments: Target.all)
    func kilnOutputPassesQemuImg(_ target: Target) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let output = "\(dir)/out.\(target.options.format.rawValue)"
        try ImageConverter.convert(from: source, to: output, options: target.options)

        if target.checkable {
            let (code, text) = try await Fixture.qemuImg(["check", "-f", target.qemuFormat, output])
            #expect(code == 0, "qemu-img check: \(text)")
        }
        let info = try await Fixture.info(output, format: target.qemuFormat)
        let sourceSize = try #require(try FileManager.default.attributesOfItem(atPath: source)[.size] as? UInt64)
        #expect(info["format"] as? String == target.qemuFormat)
        #expect((info["virtual-size"] as? NSNumber)?.uint64Value == sourceSize.roundedUp(to: target.sizeAlignment))
        if let createType = target.createType {
            let specific = (info["format-specific"] as? [String: Any])?["data"] as? [String: Any]
            #expect(specific?["create-type"] as? String == createType)
        }
        let (code, text) = try await Fixture.qemuImg(["compare", "-f", "raw", "-F", target.qemuFormat, source, output])
        #expect(code == 0, "qemu-img compare: \(text)")

        // Our own reader sees the same bytes, and detects the format from the content.
        let reader = try DiskImage.open(output)
        #expect(reader.info.format == target.options.format)
        #expect(try Fixture.sameContent(reader, raw: source))
        // Zero regions stayed unallocated: the written zero MiB at 9 MiB is not data.
        if target.options.format != .vhd || target.options.subformat != .fixed {
            let ranges = try reader.dataRanges()
            #expect(!ranges.contains { $0.overlaps((9 << 20) + (1 << 19)..<(9 << 20) + (1 << 19) + 1) })
        }
    }

    @Test(arguments: Target.all.filter { $0.name != "raw" })
    func kilnReadsQemuImgOutput(_ target: Target) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let output = "\(dir)/qemu.\(target.options.format.rawValue)"
        var arguments = ["convert", "-f", "raw", "-O", target.qemuFormat]
        if target.options.compress { arguments.append("-c") }
        if let sub = target.options.subformat { arguments += ["-o", "subformat=\(sub.rawValue)"] }
        let (code, text) = try await Fixture.qemuImg(arguments + [source, output])
        try #require(code == 0, "qemu-img convert: \(text)")

        let reader = try DiskImage.open(output)
        #expect(reader.info.format == target.options.format)
        if let sub = target.options.subformat, target.options.format != .vhd || sub == .dynamic {
            #expect(reader.info.subformat == sub)
        }
        #expect(try Fixture.sameContent(reader, raw: source))
    }

    @Test func qcow2WithBackingFileReadsThrough() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        try ImageConverter.convert(from: source, to: "\(dir)/base.qcow2", options: ExportOptions(format: .qcow2))
        let (created, text) = try await Fixture.qemuImg([
            "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "\(dir)/top.qcow2",
        ])
        try #require(created == 0, "\(text)")
        // The overlay, converted by qemu-img, is the judge's view of the chain.
        try await Fixture.qemuImg(["convert", "-O", "raw", "\(dir)/top.qcow2", "\(dir)/judge.raw"])
        let reader = try DiskImage.open("\(dir)/top.qcow2", options: OpenOptions(allowBacking: true))
        #expect(reader.info.backingFile == "base.qcow2")
        #expect(try Fixture.sameContent(reader, raw: "\(dir)/judge.raw"))
    }
}
