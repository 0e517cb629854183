import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

extension BootTests {
    /// `kiln test` on something that cannot boot ends at once, not at its timeout.
    @Suite(
        "kiln test on what cannot boot",
        .requires(
            KilnProgram.path != nil && Fixtures.tool("qemu-system-x86_64"), "the kiln binary and qemu-system-x86_64"))
    struct NoBootDeviceTests {
        @Test("a file that is no disk image is refused before QEMU starts")
        func notADiskImage() throws {
            let work = try Fixtures.temporaryDirectory("nodisk")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let text = String(repeating: "These are my notes, not a disk.\n", count: 200)
            try text.write(toFile: "\(work)/notes.txt", atomically: true, encoding: .utf8)
            let started = ContinuousClock.now
            let (code, _, err) = try KilnProgram.run(["test", "\(work)/notes.txt"])
            #expect(code == 1)
            #expect(err.contains("notes.txt is no bootable disk image"), "\(err)")
            #expect(ContinuousClock.now - started < .seconds(10), "it waited for QEMU")
            // A file smaller than a sector, too.
            try "hello\n".write(toFile: "\(work)/tiny.img", atomically: true, encoding: .utf8)
            let (tinyCode, _, tinyErr) = try KilnProgram.run(["test", "\(work)/tiny.img"])
            #expect(tinyCode == 1)
            #expect(tinyErr.contains("is no disk image"), "\(tinyErr)")
        }

        @Test("SeaBIOS's \"No bootable device.\" ends the boot at once")
        func seaBIOSFindsNothing() async throws {
            let work = try Fixtures.temporaryDirectory("nobios")
            defer { try? FileManager.default.removeItem(atPath: work) }
            // A disk without a boot signature: `kiln test` refuses it itself, so the library is asked.
            try Data(count: 1 << 20).write(to: URL(fileURLWithPath: "\(work)/blank.raw"))
            var boot = ImageBoot(image: "\(work)/blank.raw")
            boot.timeout = .seconds(300)
            let started = ContinuousClock.now
            let error = await #expect(throws: BuildVMError.self) { try await boot.run(workDirectory: work) }
            #expect(error?.message.contains("no bootable device") == true, "\(String(describing: error))")
            #expect(error?.message.contains("not a bootable disk") == true, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(60), "it waited for the timeout")
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: work) == ["blank.raw"], "the firmware log stayed")
        }

        @Test(
            "OVMF falling back to its shell fails kiln test at once",
            .requires(FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE.fd"), "ovmf"))
        func ovmfFindsNothing() throws {
            let work = try Fixtures.temporaryDirectory("noefi")
            defer { try? FileManager.default.removeItem(atPath: work) }
            // A BIOS boot sector only: nothing OVMF can start.
            try serialBootDisk(at: "\(work)/bios-only.img", printing: "legacy boot sector\r\n")
            let started = ContinuousClock.now
            let (code, _, err) = try KilnProgram.run(
                ["test", "\(work)/bios-only.img", "--firmware", "uefi", "--timeout", "300"])
            #expect(code == 1)
            #expect(err.contains("the firmware found no bootable device (OVMF"), "\(err)")
            #expect(ContinuousClock.now - started < .seconds(120), "it waited for the timeout")
        }
    }
}
