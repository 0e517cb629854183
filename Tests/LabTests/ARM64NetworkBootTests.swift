import Foundation
import KilnSupport
import KilnTestSupport
import Testing

/// An arm64 lab host with real firmware: `qemu-system-aarch64 -M virt -cpu max` (TCG) with AAVMF, its
/// own UEFI PXE client on a virtio NIC, on a bridge inside a network namespace the test makes. It takes
/// its address from kiln's DHCP server (option 93 = 11, ARM64 UEFI), loads arm64 GRUB over TFTP, and
/// GRUB loads Debian's arm64 installer with the host's preseed URL. The boot files come from Debian
/// packages through `kiln serve --prepare`, outside the namespace; inside it kiln runs `--offline`, and
/// nothing leaves the namespace.
/// AAVMF (Debian's qemu-efi-aarch64): UEFI for QEMU's arm64 `virt` machine.
private let aavmfCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
private let aavmfVariables = "/usr/share/AAVMF/AAVMF_VARS.fd"

@Suite(
    "kiln serve --config: AAVMF boots the arm64 Debian installer through kiln", .serialized,
    .requires(.root, .kilnBinary, .program("ip"), .program("qemu-system-aarch64")),
    .requires(.file(aavmfCode), .file(aavmfVariables))
)
struct ARM64NetworkBootTests {
    static let firmware = aavmfCode
    static let firmwareVariables = aavmfVariables
    static let mac = "52:54:00:12:34:60"

    /// One arm64 host installing Debian 13, the current stable release (its installer comes from trixie's
    /// suites), and nothing else: no x86 host, so no lab mirror to prepare.
    static func prepareLab() async throws -> String {
        // Beside the kiln binary (under .build), so that the boot lockfile written by the first run
        // serves the next ones: no archive index to read again.
        let folder = URL(fileURLWithPath: Tools.kiln).deletingLastPathComponent().appendingPathComponent(
            "kiln-arm64-netinstall-test"
        ).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lab = """
            address: 192.0.2.1
            interface: br-lab
            tftp: ":69"
            http: ":80"
            \(LabFixtures.dhcpBlock())
            hosts:
              - mac: "\(mac)"
                name: lab-arm
                description: debian13.yaml
                arch: aarch64
                address: 192.0.2.20

            """
        let path = try LabFixtures.write(lab, into: folder)
        let (status, output) = try await runTool([Tools.kiln, "serve", "--config", path, "--prepare"], timeout: 900)
        guard status.succeeded else {
            throw SubprocessError(command: "kiln serve --prepare", reason: "\(status): \(output)")
        }
        return path
    }

    @Test func aavmfBootsTheArm64InstallerThroughKilnsDHCPAndTFTP() async throws {
        let config = try await Self.prepareLab()
        let folder = try TemporaryFolder()
        let variables = folder.path + "/AAVMF_VARS.fd"
        try FileManager.default.copyItem(atPath: Self.firmwareVariables, toPath: variables)
        let console = folder.path + "/console.log"
        let machine = [
            // pauth-impdef: QEMU's own pointer-authentication hash instead of the architected QARMA5,
            // which is costly to emulate; the guest cannot tell. The installer's kernel reached /init
            // in 27 s of its own time with it, 62 s without.
            "qemu-system-aarch64", "-machine", "virt", "-cpu", "max,pauth-impdef=on", "-accel", "tcg", "-m", "1024",
            "-display", "none", "-no-reboot", "-serial", "file:\(console)", "-monitor", "none",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(Self.firmware)",
            "-drive", "if=pflash,format=raw,unit=1,file=\(variables)",
            "-netdev", "tap,id=lab,ifname=tap-arm64,script=no,downscript=no",
            // No option ROM: AAVMF's own virtio-net driver and PXE client do the work.
            "-device", "virtio-net-pci,netdev=lab,mac=\(Self.mac),romfile=,bootindex=1",
        ]
        let namespace = try await NetworkNamespace.bridged(taps: ["tap-arm64"])
        // A fresh state folder: the host has not installed yet.
        try? FileManager.default.removeItem(atPath: config + ".state")
        var kiln: LabKiln?
        var qemu: Subprocess?
        func consoleText() -> String {
            // The installer's screens are not all valid UTF-8, so bytes are repaired.
            String(decoding: FileManager.default.contents(atPath: console) ?? Data(), as: UTF8.self)
        }
        let preseed = "url=http://192.0.2.1/preseed/\(Self.mac.replacingOccurrences(of: ":", with: "-"))"
        // The arm64 kernel's command line, with the host's preseed URL, as the kernel prints it.
        func bootedInstaller() -> Bool {
            consoleText().split(separator: "\n").contains {
                $0.contains("Kernel command line:") && $0.contains(preseed)
            }
        }
        do {
            kiln = try await LabKiln(config: config, extra: ["--offline"], namespace: namespace, logDir: folder.path)
            let process = Subprocess(namespace.exec(machine), output: .logFile(folder.path + "/qemu.log"))
            try process.start()
            qemu = process
            let started = ContinuousClock.now
            // Firmware, GRUB and 72 MB of kernel and initrd over TFTP, all emulated: 85-117 s here under
            // TCG. The test stops at the kernel: the installer then takes 4-9 more minutes to ask for its
            // preseed (measured, see README), which is Debian's work and too long for CI.
            let deadline = started + .seconds(600)
            while ContinuousClock.now < deadline, !bootedInstaller(), process.poll() == nil {
                try await Task.sleep(for: .seconds(2))
            }
            print("the arm64 machine ran the installer's kernel after \(ContinuousClock.now - started)")
        } catch {
            await qemu?.stop()
            await kiln?.stop()
            await namespace.delete()
            throw error
        }
        await qemu?.stop()
        await kiln?.stop()
        await namespace.delete()
        let log = kiln?.logText ?? ""
        let tail = String(log.suffix(4000))
        let text = consoleText()
        // GRUB names files from the root (`/grub/...`), the firmware without a slash.
        func sent(_ path: String) -> Bool {
            logHasLine(log, "tftp: sent ", "file=\(path) ") || logHasLine(log, "tftp: sent ", "file=/\(path) ")
        }
        // AAVMF's PXE client: a lease from kiln with arm64 GRUB as its boot file, GRUB over TFTP.
        #expect(log.contains("dhcp: lease 192.0.2.20 to \(Self.mac) (lab-arm)"), "\(tail)")
        #expect(sent("grubnetaa64.efi"), "\(tail)")
        // GRUB asks in its platform folder, and kiln answers with the arm64 installer.
        #expect(sent("grub/arm64-efi/grub.cfg-\(Self.mac)"), "\(tail)")
        #expect(log.contains("loader=grub mac=\(Self.mac)"), "\(tail)")
        #expect(sent("debian-installer/13/arm64/linux"), "\(tail)")
        #expect(sent("debian-installer/13/arm64/initrd.gz"), "\(tail)")
        // The kernel is arm64's, and runs with the host's preseed URL.
        #expect(text.contains("Booting Linux on physical CPU"), "\(text.suffix(3000))")
        #expect(
            text.split(separator: "\n").contains { $0.contains("Linux version") && $0.contains("-arm64") },
            "\(text.suffix(3000))")
        #expect(bootedInstaller(), "\(text.suffix(3000))")
    }
}
