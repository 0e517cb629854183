import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

/// A disk whose boot sector prints `text` on the first serial port (COM1, I/O port 0x3F8) and halts:
/// the smallest image a real firmware boots from its own disk.
func serialBootDisk(at path: String, printing text: String) throws {
    // 16-bit real mode, loaded at 0000:7C00:
    //   cli; xor ax,ax; mov ds,ax; cld; mov si,0x7C17; mov dx,0x3F8
    //   next: lodsb; test al,al; jz halt; out dx,al; jmp next
    //   halt: hlt; jmp halt
    // followed by the NUL-terminated text at 0x7C17.
    let code: [UInt8] = [
        0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0xFC, 0xBE, 0x17, 0x7C, 0xBA, 0xF8, 0x03,
        0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xF4, 0xEB, 0xFD,
    ]
    var sector = code + Array(text.utf8) + [0]
    precondition(sector.count <= 510, "the text does not fit in a boot sector")
    sector += [UInt8](repeating: 0, count: 510 - sector.count) + [0x55, 0xAA]  // MBR boot signature
    let image = sector + [UInt8](repeating: 0, count: (1 << 20) - 512)
    try Data(image).write(to: URL(fileURLWithPath: path))
}

/// A disk whose boot sector prints `prompt` on COM1, waits for a newline typed on COM1 (polling the
/// line status register, port 0x3FD), then prints `answer` and halts: a passphrase prompt in miniature.
func serialPromptDisk(at path: String, prompt: String, answer: String) throws {
    // 16-bit real mode at 0000:7C00; `print` prints the NUL-terminated text at DS:SI.
    //   0: cli; xor ax,ax; mov ds,ax; cld; mov si,PROMPT; call print
    //  12: mov dx,0x3FD / 15: in al,dx; test al,1; jz 15      (a byte has arrived)
    //  20: mov dx,0x3F8; in al,dx; cmp al,0x0A; jne 12        (until it is a newline)
    //  28: mov si,ANSWER; call print / 34: hlt; jmp 34
    //  37: print: mov dx,0x3F8 / 40: lodsb; test al,al; jz 48; out dx,al; jmp 40 / 48: ret
    let textStart = 0x7C00 + 49
    let answerAt = textStart + prompt.utf8.count + 1
    let code: [UInt8] = [
        0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0xFC, 0xBE, UInt8(textStart & 0xFF), UInt8(textStart >> 8), 0xE8, 0x19, 0x00,
        0xBA, 0xFD, 0x03, 0xEC, 0xA8, 0x01, 0x74, 0xFB,
        0xBA, 0xF8, 0x03, 0xEC, 0x3C, 0x0A, 0x75, 0xF0,
        0xBE, UInt8(answerAt & 0xFF), UInt8(answerAt >> 8), 0xE8, 0x03, 0x00, 0xF4, 0xEB, 0xFD,
        0xBA, 0xF8, 0x03, 0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xC3,
    ]
    precondition(code.count == 49)
    var sector = code + Array(prompt.utf8) + [0] + Array(answer.utf8) + [0]
    precondition(sector.count <= 510, "the texts do not fit in a boot sector")
    sector += [UInt8](repeating: 0, count: 510 - sector.count) + [0x55, 0xAA]
    try Data(sector + [UInt8](repeating: 0, count: (1 << 20) - 512)).write(to: URL(fileURLWithPath: path))
}

extension BootTests {
    @Suite(
        "kiln test's boot of a disk image",
        .requires(.program("qemu-system-x86_64"), .program("qemu-img")))
    struct ImageBootTests {
        @Test("a qcow2 image that prints a login prompt passes under SeaBIOS")
        func biosLoginPrompt() async throws {
            let work = try Fixtures.temporaryDirectory("boot")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.raw", printing: "\r\nKiln test image\r\nkiln-test login: ")
            try await Subprocess(["qemu-img", "convert", "-O", "qcow2", "\(work)/disk.raw", "\(work)/disk.qcow2"]).run()
            var boot = ImageBoot(image: "\(work)/disk.qcow2")
            boot.timeout = .seconds(60)
            let outcome = try await boot.run(workDirectory: work)
            #expect(outcome.format == "qcow2")
            #expect(outcome.consoleTail.contains { $0.contains("kiln-test login:") })
            // Snapshot mode: the image is as it was.
            let (status, _) = try await Subprocess.output(["qemu-img", "check", "\(work)/disk.qcow2"])
            #expect(status.succeeded)
        }

        /// `kiln test --machine`: SeaBIOS finds the disk on each hypervisor's controller (PVSCSI,
        /// AHCI, PIIX IDE) and boots it, with the network card QEMU is given for it.
        @Test("SeaBIOS boots the disk from each machine's controller", arguments: VirtualHardware.allCases)
        func machineControllers(hardware: VirtualHardware) async throws {
            let work = try Fixtures.temporaryDirectory("machine")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.raw", printing: "\r\nbooted from \(hardware.rawValue)\r\nlogin: ")
            var boot = ImageBoot(image: "\(work)/disk.raw")
            boot.hardware = hardware
            boot.timeout = .seconds(60)
            let outcome = try await boot.run(workDirectory: work)
            #expect(outcome.consoleTail.contains { $0.contains("booted from \(hardware.rawValue)") })
        }

        @Test("a marker that never comes fails after the timeout with the console's last lines")
        func missingMarker() async throws {
            let work = try Fixtures.temporaryDirectory("boot")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.img", printing: "\r\nno prompt here, only this line\r\n")
            var boot = ImageBoot(image: "\(work)/disk.img")
            boot.timeout = .seconds(10)
            do {
                _ = try await boot.run(workDirectory: work)
                Issue.record("the boot passed without its marker")
            } catch {
                #expect(error.code == .timeout)
                #expect(error.message == "\"login:\" did not appear on the console within 10 s")
                #expect(error.consoleTail.contains { $0.contains("no prompt here, only this line") })
                #expect(!error.consoleTail.contains { $0.contains("terminating on signal") })
            }
            #expect(RunningQEMU.count == 0)
        }

        /// `kiln test --passphrase-file`: the passphrase reaches the guest through the serial console,
        /// once per prompt; with none, the first prompt fails the boot at once, and QEMU is gone.
        @Test("a passphrase prompt on the console is answered, or fails the boot at once")
        func passphrasePrompt() async throws {
            let work = try Fixtures.temporaryDirectory("prompt")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialPromptDisk(
                at: "\(work)/disk.raw", prompt: "\r\nPlease unlock disk root_crypt: ", answer: "\r\nunlocked\r\nlogin: "
            )
            var boot = ImageBoot(image: "\(work)/disk.raw")
            boot.timeout = .seconds(60)
            boot.passphrase = "a passphrase"
            let outcome = try await boot.run(workDirectory: work)
            #expect(outcome.consoleTail.contains { $0.contains("unlocked") })
            #expect(!outcome.consoleTail.contains { $0.contains("a passphrase") })

            boot.passphrase = nil
            let started = ContinuousClock.now
            let error = await #expect(throws: BuildVMError.self) { try await boot.run(workDirectory: work) }
            #expect(error?.message.contains("--passphrase-file") == true, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(30), "it waited for the timeout")
            let (_, running) = try await Subprocess.output(["pgrep", "-f", "qemu-system-x86_64.*\(work)/disk.raw"])
            #expect(running.isEmpty, "QEMU still runs: \(running)")
        }

        @Test(
            "OVMF starts with a private copy of its variables and reaches its shell",
            .requires(.file("/usr/share/OVMF/OVMF_CODE.fd")))
        func uefiFirmware() async throws {
            let work = try Fixtures.temporaryDirectory("uefi")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.raw", printing: "legacy boot sector\r\n")
            var boot = ImageBoot(image: "\(work)/disk.raw")
            boot.firmware = .uefi
            // No EFI boot loader on the disk, so OVMF ends in its shell.
            boot.marker = "UEFI Interactive Shell"
            boot.timeout = .seconds(120)
            let outcome = try await boot.run(workDirectory: work)
            #expect(outcome.format == "raw")
            // The variable store copy is gone.
            #expect(try FileManager.default.contentsOfDirectory(atPath: work) == ["disk.raw"])
        }
    }
}
