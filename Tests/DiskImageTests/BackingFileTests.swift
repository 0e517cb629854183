import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// A qcow2 image names its backing file; kiln must not follow that name anywhere on the host.
@Suite(
    .requires(Fixture.hasQemuImg, "qemu-img (Debian package qemu-utils)"),
    .requires(KilnProgram.isBuilt, "the kiln binary"))
struct BackingFileTests {
    /// An overlay made by qemu-img on `backing` (a path as the overlay records it).
    private func overlay(_ dir: String, backing: String, format: String) async throws -> String {
        let top = "\(dir)/top.qcow2"
        let (code, text) = try await Fixture.qemuImg([
            "create", "-f", "qcow2", "-u", "-b", backing, "-F", format, top, "64M",
        ])
        try #require(code == 0, "qemu-img create: \(text)")
        return top
    }

    private func leftovers(_ dir: String, _ name: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(name) }
    }

    @Test(arguments: ["/etc/passwd", "../passwd-copy"])
    func backingOutsideTheFolderIsNeverRead(_ backing: String) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/etc/passwd", toPath: "\(dir)/passwd-copy")
        let top = try await overlay("\(dir)/in", backing: backing, format: "raw")

        // Without --allow-backing: refused, and said why; nothing written.
        let plain = try KilnProgram.run(["convert", top, "\(dir)/out.raw"], timeout: .seconds(60))
        #expect(plain.code == 1, "\(plain)")
        #expect(plain.errors.contains("backing file '\(backing)'"), "\(plain.errors)")
        #expect(plain.errors.contains("--allow-backing"), "\(plain.errors)")
        #expect(leftovers(dir, "out.raw").isEmpty)

        // With it: still refused, since the file is not beside the image.
        let allowed = try KilnProgram.run(
            ["convert", "--allow-backing", top, "\(dir)/out.raw"], timeout: .seconds(60))
        #expect(allowed.code == 1, "\(allowed)")
        #expect(allowed.errors.contains("not a file beside the image"), "\(allowed.errors)")
        #expect(leftovers(dir, "out.raw").isEmpty)

        // inspect reports the backing file and does not read through it.
        let inspect = try KilnProgram.run(["inspect", top], timeout: .seconds(60))
        #expect(inspect.code == 0, "\(inspect)")
        #expect(inspect.output.contains("backing file: \(backing) (format raw); not opened"), "\(inspect.output)")
        let json = try KilnProgram.run(["inspect", "--json", top], timeout: .seconds(60))
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["backing_file"] as? String == backing)
        #expect(object?["backing_followed"] as? Bool == false)
    }

    @Test func backingBesideTheImageIsReadOnlyWhenAllowed() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir, name: "base.raw")
        let top = try await overlay(dir, backing: "base.raw", format: "raw")
        try await Fixture.qemuImg(["convert", "-O", "raw", top, "\(dir)/judge.raw"])

        let refused = try KilnProgram.run(["convert", top, "\(dir)/out.raw"], timeout: .seconds(60))
        #expect(refused.code == 1)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.raw"))

        let run = try KilnProgram.run(["convert", "--allow-backing", top, "\(dir)/out.raw"], timeout: .seconds(120))
        #expect(run.code == 0, "\(run)")
        #expect(run.errors.contains("reads through backing file 'base.raw'"))
        let (code, text) = try await Fixture.qemuImg([
            "compare", "-f", "raw", "-F", "raw", "\(dir)/judge.raw", "\(dir)/out.raw",
        ])
        #expect(code == 0, "qemu-img compare: \(text)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/judge.raw")).count > 0)
        _ = source
    }

    @Test func backingOfTheWrongFormatIsRefused() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        // Raw guest data that starts with a qcow2 header: recorded as raw, it must be read as raw...
        try ImageConverter.convert(
            from: try Fixture.sampleRaw(in: dir), to: "\(dir)/base.qcow2", options: ExportOptions(format: .qcow2))
        let top = try await overlay(dir, backing: "base.qcow2", format: "raw")
        let reader = try DiskImage.open(top, options: OpenOptions(allowBacking: true))
        let head = try reader.read(count: 4, at: 0)
        #expect(head == [0x51, 0x46, 0x49, 0xFB], "a raw backing file is read as raw, whatever it holds")

        // ...and one recorded as qcow2 that holds raw data is an error.
        try FileManager.default.removeItem(atPath: top)
        _ = try Fixture.sampleRaw(in: dir, name: "plain.img")
        try FileManager.default.moveItem(atPath: "\(dir)/plain.img", toPath: "\(dir)/fake.qcow2")
        let (code, text) = try await Fixture.qemuImg([
            "create", "-f", "qcow2", "-u", "-b", "fake.qcow2", "-F", "qcow2", top, "64M",
        ])
        try #require(code == 0, "\(text)")
        #expect(throws: DiskImageError.self) { try DiskImage.open(top, options: OpenOptions(allowBacking: true)) }
    }

    @Test func backingThatIsAFIFOOrALinkIsRefusedAtOnce() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        #expect(mkfifo("\(dir)/pipe", 0o600) == 0)
        let top = try await overlay(dir, backing: "pipe", format: "raw")
        let fifo = try KilnProgram.run(["convert", "--allow-backing", top, "\(dir)/out.raw"], timeout: .seconds(30))
        #expect(!fifo.timedOut, "kiln convert hung on a FIFO backing file")
        #expect(fifo.code == 1)
        #expect(fifo.errors.contains("is a FIFO"), "\(fifo.errors)")

        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: "/etc/passwd")
        try FileManager.default.removeItem(atPath: top)
        let linked = try await overlay(dir, backing: "link", format: "raw")
        let link = try KilnProgram.run(["convert", "--allow-backing", linked, "\(dir)/out.raw"], timeout: .seconds(30))
        #expect(link.code == 1)
        #expect(link.errors.contains("symbolic link"), "\(link.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.raw"))
    }

    @Test func inspectRefusesAFIFOWithoutWaiting() throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        #expect(mkfifo("\(dir)/disk.qcow2", 0o600) == 0)
        for arguments in [["inspect", "\(dir)/disk.qcow2"], ["convert", "\(dir)/disk.qcow2", "\(dir)/out.raw"]] {
            let run = try KilnProgram.run(arguments, timeout: .seconds(30))
            #expect(!run.timedOut, "kiln \(arguments[0]) hung on a FIFO")
            #expect(run.code == 1)
            #expect(run.errors.contains("is a FIFO"), "\(run.errors)")
        }
    }

    /// A fixed VHD is the guest's bytes then a footer: a guest that writes a qcow2 header (naming a host
    /// file as its backing file) at the start of its disk must not turn the VHD into that qcow2.
    @Test func fixedVHDWhoseDataStartsWithAQcow2HeaderIsAVHD() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let (code, text) = try await Fixture.qemuImg([
            "create", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "\(dir)/evil.qcow2", "64M",
        ])
        try #require(code == 0, "\(text)")
        let evil = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/evil.qcow2"))
        let guest = "\(dir)/guest.raw"
        var bytes = Data(count: 4 << 20)
        bytes.replaceSubrange(0..<evil.count, with: evil)
        try bytes.write(to: URL(fileURLWithPath: guest))
        let vhd = "\(dir)/disk.vhd"
        try ImageConverter.convert(
            from: guest, to: vhd, options: ExportOptions(format: .vhd, subformat: .fixed),
            input: OpenOptions(format: .raw))

        #expect(try DiskImage.detectFormat(vhd) == .vhd)
        let reader = try DiskImage.open(vhd)
        #expect(reader.info.format == .vhd && reader.info.subformat == .fixed)
        #expect(try Fixture.sameContent(reader, raw: guest))
        // The same through the command, under a name that says nothing.
        try FileManager.default.moveItem(atPath: vhd, toPath: "\(dir)/disk.bin")
        let run = try KilnProgram.run(["inspect", "\(dir)/disk.bin"], timeout: .seconds(30))
        #expect(run.output.contains("format: vhd (fixed)"), "\(run)")
        // --input-format reads it as whatever the user says.
        let forced = try KilnProgram.run(
            ["inspect", "--input-format", "raw", "\(dir)/disk.bin"], timeout: .seconds(30))
        #expect(forced.output.contains("format: raw"), "\(forced)")
        let bad = try KilnProgram.run(["inspect", "--input-format", "qcow3", "\(dir)/disk.bin"], timeout: .seconds(30))
        #expect(bad.code == 2)
    }
}
