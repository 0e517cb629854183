import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole boot chain with real firmware: QEMU (TCG) on a bridge inside a network namespace the test
/// makes, booting from the network through kiln's DHCP server, iPXE's HTTP script (SeaBIOS with QEMU's
/// iPXE option ROM) or GRUB over TFTP (OVMF's own PXE), into Debian's netboot installer, which fetches its
/// preseed from kiln's HTTP. The boot files come from Debian packages through `kiln serve --prepare`, outside the
/// namespace; inside it kiln runs `--offline`, and nothing leaves the namespace.
@Suite(
    "kiln serve --config: firmware boots the Debian installer through kiln", .serialized,
    .requires(.root, .program("ip"), .program("qemu-system-x86_64")),
    .requires(.file("/usr/lib/ipxe/qemu/efi-virtio.rom"), .file("/usr/share/OVMF/OVMF_CODE_4M.fd"))
)
struct NetworkInstallBootTests {
    /// The lab, its boot files prepared from Debian packages, once for both firmware runs. Awaited, not
    /// waited for: a thread of Swift's small pool blocked on it could be the one the preparation needs.
    static let prepared = Task.detached { try await prepareLab() }

    static func prepareLab() async throws -> String {
        // Beside the kiln binary (under .build), so that the boot lockfile written there by the first run
        // serves the next ones: no archive index to read again.
        let folder = URL(fileURLWithPath: Tools.kiln).deletingLastPathComponent().appendingPathComponent(
            "kiln-netinstall-test"
        ).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lab = LabFixtures.namespaceLab(
            interface: "br-lab", http: ":80",
            moreHosts: """
                  - mac: "52:54:00:12:34:57"
                    name: lab-08
                    description: debian.yaml
                  - mac: "52:54:00:12:34:58"
                    name: lab-09
                    description: debian13.yaml
                    boot_loaders: {ipxe: loader}

                """)
        let path = try LabFixtures.write(lab, into: folder)
        let (status, output) = try await runTool([Tools.kiln, "serve", "--config", path, "--prepare"], timeout: 900)
        guard status.succeeded else {
            throw SubprocessError(command: "kiln serve --prepare", reason: "\(status): \(output)")
        }
        return path
    }

    /// One machine: its firmware, NIC and serial console.
    struct Machine {
        var name: String
        var mac: String
        var tap: String
        var arguments: [String]
        var console: String
        /// Whether the test waits for the installer to fetch its preseed, or only until the boot loader
        /// has fetched the installer's kernel over TFTP.
        var waitsForPreseed = true
        /// The Debian release whose netboot installer the host's description asks for.
        var release = 12

        func command() -> [String] {
            [
                "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-display", "none", "-no-reboot",
                "-serial", "file:\(console)", "-monitor", "none",
                "-netdev", "tap,id=lab,ifname=\(tap),script=no,downscript=no", "-boot", "n",
            ] + arguments
        }

        /// The console as text; the installer's screens are not all valid UTF-8, so bytes are repaired.
        var consoleText: String {
            String(decoding: FileManager.default.contents(atPath: console) ?? Data(), as: UTF8.self)
        }

        /// Whether kiln's log shows the installer's kernel sent over TFTP to this machine's address.
        func fetchedKernelOverTFTP(_ log: String) -> Bool {
            let lines = log.split(separator: "\n")
            guard let lease = lines.first(where: { $0.contains("dhcp: lease ") && $0.contains(" to \(mac) ") }),
                let address = lease.split(separator: " ").drop(while: { $0 != "lease" }).dropFirst().first
            else { return false }
            return lines.contains {
                $0.contains("client=\(address):") && $0.contains("file=debian-installer/\(release)/amd64/linux ")
                    && $0.contains("tftp: sent")
            }
        }

        /// The installer's kernel shows its command line, with this host's preseed URL, on the console.
        var bootedInstaller: Bool {
            consoleText.contains("url=http://192.0.2.1/preseed/\(mac.replacingOccurrences(of: ":", with: "-"))")
        }
    }

    /// SeaBIOS with QEMU's iPXE option ROM (the NIC's default ROM) and OVMF with its own PXE (no option
    /// ROM, so that the firmware's PXE client and GRUB do the work), booted side by side until kiln has
    /// rendered both preseeds and both consoles show the installer's kernel command line; and a third
    /// SeaBIOS machine whose iPXE is told to load pxelinux, until its installer kernel runs.
    @Test func seaBIOSThroughIPXEOrPxelinuxAndOVMFThroughGRUBBootTheInstaller() async throws {
        let config = try await Self.prepared.value
        let folder = try TemporaryFolder()
        try FileManager.default.copyItem(
            atPath: "/usr/share/OVMF/OVMF_VARS_4M.fd", toPath: folder.path + "/OVMF_VARS.fd")
        let machines = [
            Machine(
                name: "lab-07", mac: "52:54:00:12:34:56", tap: "tap-bios",
                arguments: ["-device", "virtio-net-pci,netdev=lab,mac=52:54:00:12:34:56"],
                console: folder.path + "/bios-console.log"),
            Machine(
                name: "lab-08", mac: "52:54:00:12:34:57", tap: "tap-uefi",
                arguments: [
                    "-device", "virtio-net-pci,netdev=lab,mac=52:54:00:12:34:57,romfile=", "-machine", "q35",
                    "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                    "-drive", "if=pflash,format=raw,unit=1,file=\(folder.path)/OVMF_VARS.fd",
                ],
                console: folder.path + "/uefi-console.log"),
            // iPXE treated as plain PXE firmware (the host's `boot_loaders: {ipxe: loader}`): it loads
            // pxelinux.0, which loads the installer over TFTP: Debian 13's, as its description asks.
            // Stopped once it has the kernel.
            Machine(
                name: "lab-09", mac: "52:54:00:12:34:58", tap: "tap-pxelinux",
                arguments: ["-device", "virtio-net-pci,netdev=lab,mac=52:54:00:12:34:58"],
                console: folder.path + "/pxelinux-console.log", waitsForPreseed: false, release: 13),
        ]
        let namespace = try await NetworkNamespace.bridged(taps: machines.map(\.tap))
        // A fresh state folder: neither host has installed yet.
        try? FileManager.default.removeItem(atPath: config + ".state")
        var kiln: LabKiln?
        var processes: [Subprocess] = []
        func stopAll() async {
            for process in processes { await process.stop() }
            await kiln?.stop()
            await namespace.delete()
        }
        do {
            kiln = try await LabKiln(config: config, extra: ["--offline"], namespace: namespace, logDir: folder.path)
            for machine in machines {
                let process = Subprocess(
                    namespace.exec(machine.command()), output: .logFile(folder.path + "/\(machine.name)-qemu.log"))
                try process.start()
                processes.append(process)
            }
            let started = ContinuousClock.now
            // Under two minutes each on a quiet machine; the ceiling is for a CI runner shared with others.
            let deadline = started + .seconds(600)
            func done(_ machine: Machine) -> Bool {
                let log = kiln?.logText ?? ""
                guard machine.waitsForPreseed else { return machine.fetchedKernelOverTFTP(log) }
                return machine.bootedInstaller && log.contains("preseed for \(machine.name) rendered")
            }
            var running = Set(machines.indices)
            while ContinuousClock.now < deadline, !running.isEmpty {
                for index in running where done(machines[index]) || processes[index].poll() != nil {
                    // A machine that is done is stopped at once, so that the others have the CPU.
                    await processes[index].stop()
                    running.remove(index)
                    print("\(machines[index].name) done after \(ContinuousClock.now - started)")
                }
                try await Task.sleep(for: .seconds(2))
            }
            print("network boots of the three machines took \(ContinuousClock.now - started)")
        } catch {
            await stopAll()
            throw error
        }
        await stopAll()
        let log = kiln?.logText ?? ""
        let tail = String(log.suffix(4000))
        // SeaBIOS: iPXE's DHCP is answered with its own script, which loads the installer over HTTP.
        #expect(log.contains("dhcp: lease 192.0.2.17 to 52:54:00:12:34:56 (lab-07)"), "\(tail)")
        #expect(log.contains("loader=ipxe mac=52:54:00:12:34:56"), "\(tail)")
        #expect(log.contains("path=/debian-installer/12/amd64/initrd.gz status=200"), "\(tail)")
        // OVMF: the firmware's PXE client loads GRUB over TFTP, GRUB its per-MAC configuration and the
        // installer.
        #expect(logHasLine(log, "tftp: sent ", "file=grubnetx64.efi "), "\(tail)")
        #expect(logHasLine(log, "tftp: sent ", "file=/grub/grub.cfg-52:54:00:12:34:57 "), "\(tail)")
        #expect(log.contains("loader=grub mac=52:54:00:12:34:57"), "\(tail)")
        // SeaBIOS with iPXE as plain PXE: pxelinux, its per-MAC configuration, the installer over TFTP.
        #expect(
            log.contains("to 52:54:00:12:34:58 (lab-09) for 600 s"), "\(tail)")
        #expect(logHasLine(log, "tftp: sent ", "file=pxelinux.0 "), "\(tail)")
        #expect(logHasLine(log, "tftp: sent ", "file=ldlinux.c32 "), "\(tail)")
        #expect(log.contains("loader=pxelinux mac=52:54:00:12:34:58"), "\(tail)")
        #expect(machines[2].fetchedKernelOverTFTP(log), "\(tail)")
        for machine in machines where machine.waitsForPreseed {
            // The installer's own DHCP client (busybox udhcpc, vendor class "d-i") got its lease from kiln
            // before it fetched the preseed: the firmware's lease is not passed on.
            #expect(
                log.split(separator: "\n").contains {
                    $0.contains("vendor-class=d-i") && $0.contains("dhcp: lease ") && $0.contains(" to \(machine.mac) ")
                }, "\(tail)")
            #expect(log.contains("preseed for \(machine.name) rendered"), "\(tail)")
            #expect(machine.bootedInstaller, "\(machine.name): \(machine.consoleText.suffix(2000))")
        }
    }
}
