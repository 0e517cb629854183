import ArgumentParser
import BuildVM
import DiskImage
import Foundation
import KilnSupport

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Boot an image under QEMU and wait for its login prompt.",
        discussion: """
            The image boots from its own boot loader (SeaBIOS, or OVMF with --firmware uefi) with its \
            serial console read by kiln; the image file is never written. An image whose EFI system \
            partition holds arm64's removable loader (EFI/BOOT/BOOTAA64.EFI) boots on QEMU's aarch64 \
            virt board with AAVMF (qemu-system-arm and qemu-efi-aarch64), emulated unless the host is arm64. Its format (raw, qcow2, vmdk, \
            vhd, vhdx, vdi) is told by its contents. On failure the console's last lines are printed and \
            kiln exits 1.

            --machine boots it on the disk controller and network card its hypervisor presents, as QEMU \
            emulates them: virtio (default: virtio-blk, no network card), vmware (PVSCSI disk, VMXNET3), \
            virtualbox (AHCI SATA disk, E1000), hyperv (generation 1: PIIX IDE disk; QEMU has no VMBus \
            devices). A network card gets QEMU's user-mode network with its DHCP server, closed to the \
            outside.

            An image with encrypted partitions asks for their passphrase on the console while it boots: \
            --passphrase-file names a file whose first line kiln types at each prompt (never logged; a \
            file, so that the passphrase stays out of the process list and shell history). Without it, \
            such a prompt fails the test at once.
            """
    )

    enum FirmwareChoice: String, ExpressibleByArgument, CaseIterable {
        case bios, uefi
    }

    enum MachineChoice: String, ExpressibleByArgument, CaseIterable {
        case virtio, vmware, virtualbox, hyperv
    }

    @Argument(help: "The image.")
    var image: String

    @Option(
        help: "The firmware: bios (SeaBIOS; the default for x86_64 images) or uefi (OVMF; AAVMF for aarch64 images).")
    var firmware: FirmwareChoice?

    @Option(help: "The virtual hardware: virtio, vmware (PVSCSI, VMXNET3), virtualbox (AHCI, E1000), hyperv (IDE).")
    var machine: MachineChoice?

    @Option(help: "Seconds to wait for the marker.")
    var timeout: Int = 300

    @Option(name: .customLong("expect"), help: "The text to wait for on the serial console.")
    var marker = "login:"

    @Option(help: "auto (KVM unless it is unusable or failed on this host before, else TCG), kvm, or tcg.")
    var accel: Accelerator = .auto

    @Flag(help: "Forget what kiln remembers about KVM on this host and try it again.")
    var probeKvm = false

    @Option(help: ArgumentHelp("A file whose first line is typed at each LUKS passphrase prompt.", valueName: "file"))
    var passphraseFile: String?

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard !marker.isEmpty else { throw ValidationError("--expect must not be empty") }
    }

    /// Refuses, before QEMU starts, a file that is no disk image or whose disk has no boot sector: one
    /// that the firmware could not boot anyway.
    /// Returns the machine the image is for: aarch64 when its ESP holds arm64's removable loader.
    @discardableResult
    static func checkBootable(_ image: String) throws(CommandFailure) -> Architecture {
        let wholeDisks = "kiln boots whole disk images (raw, qcow2, vmdk, vhd, vhdx, vdi), as kiln build writes them"
        let sector: [UInt8]
        let info: ImageInfo
        var architecture = Architecture.x86_64
        do {
            let reader = try DiskImage.openChecked(image)
            info = reader.info
            guard info.virtualSize >= 512 else {
                throw CommandFailure(
                    "\(image) is no disk image: \(info.virtualSize) bytes, less than one sector", hint: wholeDisks)
            }
            sector = try reader.read(count: 512, at: 0)
            if sector[510] == 0x55 && sector[511] == 0xAA {
                architecture = try RemovableLoader.architecture(of: reader) ?? .x86_64
            }
        } catch let error as DiskImageError {
            throw CommandFailure("\(image): \(error)")
        } catch let error as CommandFailure {
            throw error
        } catch {
            throw CommandFailure("\(image): \(error)")
        }
        guard sector[510] == 0x55 && sector[511] == 0xAA else {
            throw CommandFailure(
                "\(image) is no bootable disk image: its first sector has no boot signature (55 AA), so no "
                    + "partition table and no boot loader (read as \(info.format.rawValue))",
                hint: wholeDisks)
        }
        return architecture
    }

    /// The firmware and machine an image boots on: what was asked for, else SeaBIOS on virtio for x86_64
    /// and UEFI on virtio (the virt board) for aarch64, which has neither a BIOS nor x86 hardware.
    static func hardware(
        for architecture: Architecture, image: String, firmware: FirmwareChoice?, machine: MachineChoice?
    ) throws(CommandFailure) -> (FirmwareChoice, MachineChoice) {
        if architecture == .aarch64 {
            if firmware == .bios {
                throw CommandFailure(
                    "\(image) is an aarch64 image: arm64 machines boot with UEFI only (--firmware uefi)")
            }
            if let machine, machine != .virtio {
                throw CommandFailure(
                    "\(image) is an aarch64 image: --machine \(machine.rawValue) is x86 hardware; arm64 images boot on "
                        + "QEMU's virt board (--machine virtio)")
            }
        }
        return (firmware ?? (architecture == .aarch64 ? .uefi : .bios), machine ?? .virtio)
    }

    func run() async throws {
        guard FileManager.default.isReadableFile(atPath: image) else {
            throw CommandFailure("cannot read \(image): no such file or not readable")
        }
        let architecture = try Self.checkBootable(image)
        var boot = ImageBoot(image: image)
        boot.architecture = architecture
        let (firmware, machine) = try Self.hardware(
            for: architecture, image: image, firmware: self.firmware, machine: self.machine)
        boot.firmware = firmware == .uefi ? .uefi : .bios
        boot.hardware = VirtualHardware(rawValue: machine.rawValue) ?? .virtio
        boot.marker = marker
        boot.timeout = .seconds(timeout)
        boot.accelerator = accel
        if probeKvm { KVMProbe.forget() }
        if let passphraseFile {
            guard let text = try? String(contentsOfFile: passphraseFile, encoding: .utf8) else {
                throw CommandFailure("cannot read \(passphraseFile): no such file, not readable, or not UTF-8")
            }
            let passphrase = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
            guard !passphrase.isEmpty else { throw CommandFailure("\(passphraseFile): the first line is empty") }
            boot.passphrase = passphrase
        }
        if boot.firmware == .uefi && !FileManager.default.fileExists(atPath: boot.uefiFirmware.code) {
            throw CommandFailure(
                "UEFI firmware not found at \(boot.uefiFirmware.code)",
                hint: "install Debian's \(architecture == .aarch64 ? "qemu-efi-aarch64" : "ovmf") package")
        }
        // The UEFI variable store's copy lives here; it goes on every exit, interrupted or not.
        let work = NSTemporaryDirectory() + "kiln-test-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        Interruption.onInterrupt {
            RunningQEMU.killAll()
            try? FileManager.default.removeItem(atPath: work)
        }
        let console = progress.console()
        let outcome: ImageBoot.Outcome
        do {
            outcome = try await boot.run(workDirectory: work, progress: console.sink)
        } catch {
            var lines = ["kiln: error: \(image): \(error.message)"]
            if !error.consoleTail.isEmpty {
                lines.append("kiln: the console's last lines:")
                lines += error.consoleTail.map { "  | \($0)" }
            }
            if machine == .vmware && firmware == .uefi {
                // Seen here: Debian 12's OVMF maps no PVSCSI disk and ends in its shell.
                lines.append(
                    "kiln: hint: OVMF built without its PVSCSI driver (PvScsiDxe), as Debian's is, cannot boot a "
                        + "PVSCSI disk; ESXi's own UEFI firmware can")
            }
            throw CommandFailure(lines: lines)
        }
        let seconds = Double(outcome.elapsed.components.seconds) + Double(outcome.elapsed.components.attoseconds) / 1e18
        console.write(
            String(
                format: "kiln: %@ booted to \"%@\" in %.1f s (%@, %@, %@, %@, %@)", image, marker, seconds,
                outcome.format, architecture.rawValue, firmware.rawValue, boot.hardware.summary,
                outcome.accelerator.rawValue))
        console.result(
            Result(
                image: image, format: outcome.format, arch: architecture.rawValue, firmware: firmware.rawValue,
                machine: machine.rawValue, marker: marker, seconds: seconds, accelerator: outcome.accelerator.rawValue))
    }

    /// `kiln test --json`'s result: what booted, on what, and how long it took to say `marker`.
    struct Result: Encodable {
        let image: String
        let format: String
        let arch: String
        let firmware: String
        let machine: String
        let marker: String
        let seconds: Double
        let accelerator: String
    }
}
