import Foundation
import KilnSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole boot chain with real firmware: QEMU (TCG) on a bridge inside a network namespace the test
/// makes, booting from the network through kiln's DHCP server, iPXE's HTTP script (SeaBIOS with QEMU's
/// iPXE option ROM) or GRUB over TFTP (OVMF), into Debian's netboot installer, which fetches its preseed
/// from kiln's HTTP. The boot files come from Debian packages through `kiln serve --prepare`, outside the
/// namespace; inside it kiln runs `--offline`, and nothing leaves the namespace.
@Suite(
    "kiln serve --config: firmware boots the Debian installer through kiln", .serialized,
    .enabled(if: Tools.namespaces && Tools.has("qemu-system-x86_64"), "needs root, iproute2 and QEMU"),
    .enabled(
        if: FileManager.default.fileExists(atPath: "/usr/lib/ipxe/qemu/efi-virtio.rom")
            && FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd"),
        "needs ipxe-qemu and ovmf")
)
struct NetworkInstallBootTests {
    static let mac = "52:54:00:12:34:56"

    /// The lab, its boot files prepared from Debian packages, once for both firmware runs.
    static let prepared: Result<String, any Error> = {
        let semaphore = DispatchSemaphore(value: 0)
        let box = ResultBox()
        Task.detached {
            do {
                box.result = .success(try await prepareLab())
            } catch {
                box.result = .failure(error)
            }
            semaphore.signal()
        }
        semaphore.wait()
        return box.result ?? .failure(SubprocessError(command: "prepare", reason: "no result"))
    }()

    final class ResultBox: @unchecked Sendable {
        // @unchecked: written once by the detached task before the semaphore is signalled, read after.
        var result: Result<String, any Error>?
    }

    static func prepareLab() async throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-netinstall-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lab = """
            address: 192.0.2.1
            interface: br-lab
            tftp: ":69"
            http: ":80"
            dhcp:
              mode: server
              range: 192.0.2.100-192.0.2.110
              router: 192.0.2.1
              lease_time: 600
            hosts:
              - mac: "\(mac)"
                name: lab-07
                description: debian.yaml
                address: 192.0.2.17

            """
        let path = try LabFixtures.write(lab, into: folder)
        let (status, output) = try await runTool([Tools.kiln, "serve", "--config", path, "--prepare"], timeout: 900)
        guard status.succeeded else {
            throw SubprocessError(command: "kiln serve --prepare", reason: "\(status): \(output)")
        }
        return path
    }

    /// A namespace with a bridge (kiln's side, 192.0.2.1/24) and a tap device on it for QEMU.
    func bridgedNamespace() async throws -> NetworkNamespace {
        let namespace = try await NetworkNamespace()
        let commands: [[String]] = [
            ["ip", "link", "add", "br-lab", "type", "bridge"],
            ["ip", "addr", "add", "192.0.2.1/24", "dev", "br-lab"],
            ["ip", "tuntap", "add", "dev", "tap-lab", "mode", "tap"],
            ["ip", "link", "set", "tap-lab", "master", "br-lab"],
            ["ip", "link", "set", "tap-lab", "up"],
            ["ip", "link", "set", "br-lab", "up"],
        ]
        do {
            for argv in commands { try await Subprocess(namespace.exec(argv)).run() }
        } catch {
            await namespace.delete()
            throw error
        }
        return namespace
    }

    /// Boots QEMU on the tap device until kiln has rendered the host's preseed and the installer's kernel
    /// shows kiln's command line on the serial console; returns kiln's log and the console.
    func boot(firmware: [String], folder: TemporaryFolder) async throws -> (kiln: String, console: String) {
        let config = try Self.prepared.get()
        let namespace = try await bridgedNamespace()
        let kiln: LabKiln
        do {
            // A fresh state folder: the host has not installed yet.
            try? FileManager.default.removeItem(atPath: config + ".state")
            kiln = try await LabKiln(config: config, extra: ["--offline"], namespace: namespace, logDir: folder.path)
        } catch {
            await namespace.delete()
            throw error
        }
        let console = folder.path + "/console.log"
        let qemu = Subprocess(
            namespace.exec(
                [
                    "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-display", "none", "-no-reboot",
                    "-serial", "file:\(console)", "-monitor", "none",
                    "-netdev", "tap,id=lab,ifname=tap-lab,script=no,downscript=no",
                    "-device", "virtio-net-pci,netdev=lab,mac=\(Self.mac),romfile=/usr/lib/ipxe/qemu/efi-virtio.rom",
                    "-boot", "n",
                ] + firmware),
            output: .logFile(folder.path + "/qemu.log"))
        var consoleText = ""
        do {
            try qemu.start()
            let deadline = ContinuousClock.now + .seconds(200)
            while ContinuousClock.now < deadline {
                consoleText = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
                if kiln.logText.contains("preseed for lab-07"), consoleText.contains("url=http://192.0.2.1/preseed/") {
                    break
                }
                if qemu.poll() != nil { break }
                try await Task.sleep(for: .seconds(1))
            }
        } catch {
            await qemu.stop()
            await kiln.stop()
            await namespace.delete()
            throw error
        }
        await qemu.stop()
        await kiln.stop()
        await namespace.delete()
        return (kiln.logText, consoleText)
    }

    @Test func seaBIOSWithIPXEBootsTheInstallerWhichFetchesItsPreseed() async throws {
        let folder = try TemporaryFolder()
        let (log, console) = try await boot(firmware: [], folder: folder)
        #expect(log.contains("dhcp: lease 192.0.2.17 to \(Self.mac) (lab-07)"), "\(log.suffix(3000))")
        #expect(log.contains("lab: lab-07 boots the installer") && log.contains("loader=ipxe"), "\(log.suffix(3000))")
        #expect(log.contains("preseed for lab-07 rendered"), "\(log.suffix(3000))")
        #expect(console.contains("url=http://192.0.2.1/preseed/52-54-00-12-34-56"), "\(console.suffix(3000))")
    }

    @Test func ovmfBootsGRUBWhichBootsTheInstallerWhichFetchesItsPreseed() async throws {
        let folder = try TemporaryFolder()
        let variables = folder.path + "/OVMF_VARS.fd"
        try FileManager.default.copyItem(atPath: "/usr/share/OVMF/OVMF_VARS_4M.fd", toPath: variables)
        let firmware = [
            "-machine", "q35",
            "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "-drive", "if=pflash,format=raw,unit=1,file=\(variables)",
        ]
        let (log, console) = try await boot(firmware: firmware, folder: folder)
        #expect(log.contains("grubnetx64.efi"), "\(log.suffix(3000))")
        #expect(log.contains("lab: lab-07 boots the installer") && log.contains("loader=grub"), "\(log.suffix(3000))")
        #expect(log.contains("preseed for lab-07 rendered"), "\(log.suffix(3000))")
        #expect(console.contains("url=http://192.0.2.1/preseed/52-54-00-12-34-56"), "\(console.suffix(3000))")
    }
}
