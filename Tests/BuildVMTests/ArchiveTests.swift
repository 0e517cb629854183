import Foundation
import KilnArchive
import KilnSupport
import KilnTestSupport
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

@Suite("cpio writer, .deb reader, ELF reader")
struct ArchiveTests {
    func sampleTree() -> FileTree {
        var tree = FileTree()
        tree.add("bin/tool", .file(contents: Array("#!/bin/sh\necho hi\n".utf8), permissions: 0o755))
        tree.add("etc/conf", .file(contents: Array("key=value\n".utf8), permissions: 0o644))
        tree.add("bin/alias", .symlink(target: "tool"))
        tree.add("dev/console", .characterDevice(major: 5, minor: 1, permissions: 0o600))
        return tree
    }

    @Test(
        "the newc archive is what GNU cpio lists, and the same bytes every time",
        .requires(Fixtures.tool("cpio"), "GNU cpio"))
    func cpioIsDeterministicAndReadable() async throws {
        let work = try Fixtures.temporaryDirectory("cpio")
        defer { try? FileManager.default.removeItem(atPath: work) }
        for name in ["a.cpio", "b.cpio"] {
            let writer = try CpioWriter(path: "\(work)/\(name)", compression: .none, modificationTime: 1_700_000_000)
            try writer.add(sampleTree())
            try writer.finish()
        }
        let first = try Data(contentsOf: URL(fileURLWithPath: "\(work)/a.cpio"))
        #expect(first == (try Data(contentsOf: URL(fileURLWithPath: "\(work)/b.cpio"))))
        #expect(first.prefix(6) == Data("070701".utf8))

        let (status, listing) = try await Subprocess.output(
            ["sh", "-c", "cpio -itv --quiet < \"$1\"", "sh", "\(work)/a.cpio"],
            environment: Subprocess.minimalEnvironment.merging(["TZ": "UTC"]) { $1 })
        #expect(status.succeeded)
        let lines = listing.split(separator: "\n").map(String.init)
        #expect(
            lines.map { $0.contains("bin/alias -> tool") ? "bin/alias" : String($0.split(separator: " ").last ?? "") }
                == ["bin", "bin/alias", "bin/tool", "dev", "dev/console", "etc", "etc/conf"])
        #expect(lines.contains { $0.hasPrefix("-rwxr-xr-x") && $0.contains(" root ") && $0.hasSuffix("bin/tool") })
        #expect(lines.contains { $0.hasPrefix("lrwxrwxrwx") && $0.hasSuffix("bin/alias -> tool") })
        #expect(lines.contains { $0.hasPrefix("crw-------") && $0.contains("5,") && $0.hasSuffix("dev/console") })
        #expect(lines.contains { $0.contains("Nov 14  2023") && $0.hasSuffix("etc/conf") })
    }

    @Test("gzip and zstd streams are deterministic and gunzip or zstd can read them")
    func compressedCpio() async throws {
        let work = try Fixtures.temporaryDirectory("cpioz")
        defer { try? FileManager.default.removeItem(atPath: work) }
        for compression in [CpioWriter.Compression.gzip, .zstd] {
            var outputs: [Data] = []
            for index in 0..<2 {
                let path = "\(work)/\(compression.rawValue)-\(index)"
                let writer = try CpioWriter(path: path, compression: compression, modificationTime: 0)
                try writer.add(sampleTree())
                try writer.finish()
                outputs.append(try Data(contentsOf: URL(fileURLWithPath: path)))
            }
            #expect(outputs[0] == outputs[1])
            let tool = compression == .gzip ? "gzip" : "zstd"
            guard Fixtures.tool(tool) else { continue }
            let (status, text) = try await Subprocess.output([tool, "-dc", "\(work)/\(compression.rawValue)-0"])
            #expect(status.succeeded)
            #expect(text.hasPrefix("070701"))
        }
    }

    @Test(
        "a .deb's control fields and file list agree with dpkg-deb",
        .requires(Fixtures.tool("dpkg-deb") && Fixtures.tool("apt-get"), "dpkg-deb and apt-get"))
    func debianPackage() async throws {
        let deb = try #require(try await Fixtures.packages().first { FileTree.basename($0).hasPrefix("dosfstools_") })
        let fields = try DebianPackage(path: deb).controlFields()
        #expect(fields["Package"] == "dosfstools")
        let (_, version) = try await Subprocess.output(["dpkg-deb", "-f", deb, "Version"])
        #expect(fields["Version"] == version.trimmingCharacters(in: .whitespacesAndNewlines))

        var tree = FileTree()
        try DebianPackage(path: deb).extract(into: &tree)
        let (status, names) = try await Subprocess.output(
            ["sh", "-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -t", "sh", deb])
        #expect(status.succeeded)
        let expected = Set(
            names.split(separator: "\n").map { ArchiveEntry.normalize(String($0)) }.filter { !$0.isEmpty })
        #expect(Set(tree.nodes.keys) == expected)
        #expect(tree.node(at: "sbin/mkfs.vfat") == .symlink(target: "mkfs.fat"))
        #expect(tree.resolve("sbin/mkfs.vfat") == "sbin/mkfs.fat")
    }

    @Test(
        "DT_NEEDED and PT_INTERP agree with readelf", .requires(Fixtures.tool("readelf"), "readelf (binutils)")
    )
    func elfDependencies() async throws {
        let path = "/usr/bin/qemu-img"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let elf = try ELFFile(bytes: bytes, name: path)
        let (_, dynamic) = try await Subprocess.output(["readelf", "-d", path])
        let expected = dynamic.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line -> String? in
            guard let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        #expect(!expected.isEmpty)
        #expect(try elf.neededLibraries() == expected)
        let (_, headers) = try await Subprocess.output(["readelf", "-l", path])
        #expect(headers.contains("[Requesting program interpreter: \(try elf.interpreter() ?? "none")]"))
        #expect(throws: BuildVMError.self) { try ELFFile(bytes: Array("#!/bin/sh\n".utf8), name: "script") }
    }

    @Test(
        "kernel modules come after their dependencies",
        .requires(Fixtures.canBoot, "apt-get for the kernel package"))
    func moduleOrder() async throws {
        let assembler = BuilderGuestAssembler(recipe: BuilderGuestRecipe(packages: try await Fixtures.packages()))
        let tree = try assembler.unpack()
        let (_, version) = try assembler.findKernel(in: tree)
        let order = try ModuleSet(tree: tree, kernelVersion: version).loadOrder(for: ["virtio_blk", "vfat", "ext4"])
            .map { String(FileTree.basename($0).dropLast(3)) }
        #expect(order.contains("virtio_ring") && order.contains("fat"))
        #expect(order.firstIndex(of: "virtio_ring")! < order.firstIndex(of: "virtio")!)
        #expect(order.firstIndex(of: "virtio")! < order.firstIndex(of: "virtio_blk")!)
        #expect(order.firstIndex(of: "fat")! < order.firstIndex(of: "vfat")!)
        #expect(!order.contains("ext4"))  // built in
        #expect(throws: BuildVMError.self) {
            try ModuleSet(tree: tree, kernelVersion: version).loadOrder(for: ["no_such"])
        }
    }

    @Test("protocol lines count only in sequence")
    func protocolParser() {
        var parser = GuestProtocolParser()
        #expect(parser.parse("[    1.0] random kernel line") == nil)
        #expect(parser.parse("KILN:1:init:1.52") == GuestEvent(sequence: 1, name: "init", payload: "1.52"))
        #expect(parser.parse("KILN:1:init:again") == nil)
        #expect(parser.parse("KILN:3:step:skipped a number") == nil)
        #expect(parser.parse("KILN:2:result:a:b:c") == GuestEvent(sequence: 2, name: "result", payload: "a:b:c"))
        #expect(parser.parse("KILN:x:step:") == nil)
    }

    @Test("messages read as typed values; a record missing a field or holding a bad number is an error")
    func typedMessages() throws {
        func message(_ name: String, _ payload: String) throws(GuestRecordError) -> GuestMessage {
            try GuestMessage(GuestEvent(sequence: 1, name: name, payload: payload))
        }
        #expect(try message("init", "uptime=1.52") == .started(.initStarted, uptime: 1.52))
        #expect(try message("progress", "total=90 completed=12") == .progress(completed: 12, total: 90))
        #expect(try message("progress", "completed=12") == .progress(completed: 12, total: nil))
        #expect(try message("exit", "status=3") == .exit(status: 3))
        #expect(try message("step", "writing a=b c") == .step("writing a=b c"))
        #expect(
            try message("tree", "partition=2 list_offset=1048576")
                == .report(name: "tree", GuestRecord("partition=2 list_offset=1048576")))
        #expect(throws: GuestRecordError.self) { try message("exit", "") }
        #expect(throws: GuestRecordError.self) { try message("progress", "completed=12x total=90") }
        #expect(throws: GuestRecordError.self) { try message("init", "1.52") }
        let record = GuestRecord("size=42 note=x=y  odd")
        #expect(try record.integer("size") == 42 && record.fields["note"] == "x=y" && record.fields["odd"] == nil)
        #expect(try record.optionalInteger("missing") == nil)
    }

    @Test(
        "QEMU opens an image as the format kiln's readers detect, as qemu-img made them",
        .requires(Fixtures.tool("qemu-img"), "qemu-img"))
    func imageFormats() async throws {
        let work = try Fixtures.temporaryDirectory("formats")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let cases: [(String, [String], String)] = [
            ("raw", [], "raw"), ("qcow2", [], "qcow2"), ("vmdk", [], "vmdk"),
            ("vmdk", ["-o", "subformat=streamOptimized"], "vmdk"), ("vpc", [], "vpc"),
            ("vpc", ["-o", "subformat=fixed"], "vpc"), ("vhdx", [], "vhdx"), ("vdi", [], "vdi"),
        ]
        for (index, (format, options, expected)) in cases.enumerated() {
            let path = "\(work)/image-\(index)"
            try await Subprocess(["qemu-img", "create", "-q", "-f", format] + options + [path, "8M"]).run()
            #expect(try DiskFormat.qemuName(of: path) == expected, "qemu-img -f \(format) \(options)")
        }
    }

    /// A guest can write a qcow2 header at the start of its disk; in a fixed VHD that is the file's start.
    /// QEMU told `format=qcow2` would follow the header's backing file, a host path: the VHD footer wins,
    /// and a real qcow2 with a backing file is refused.
    @Test(.requires(Fixtures.tool("qemu-img"), "qemu-img"))
    func fixedVHDWithAQcow2HeadIsAVHDAndBackingFilesAreRefused() async throws {
        let work = try Fixtures.temporaryDirectory("formats")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try await Subprocess([
            "qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw",
            "\(work)/lure.qcow2", "1M",
        ]).run()
        try await Subprocess([
            "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed",
            "\(work)/disk.vhd", "8M",
        ]).run()
        let lure = try #require(FileManager.default.contents(atPath: "\(work)/lure.qcow2"))
        let handle = try #require(FileHandle(forWritingAtPath: "\(work)/disk.vhd"))
        try handle.write(contentsOf: lure.prefix(4096))
        try handle.close()
        #expect(try DiskFormat.qemuName(of: "\(work)/disk.vhd") == "vpc")
        #expect(throws: BuildVMError.self) { try DiskFormat.qemuName(of: "\(work)/lure.qcow2") }
    }
}
