import ArgumentParser
import BuildVM
import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot an image under QEMU with its console on this terminal, to log in and use it.",
        discussion: """
            The image's serial console is this terminal: log in there (kiln's images have a serial \
            console; the default appliance's root password is in its description). Ctrl-a x quits QEMU, \
            Ctrl-a c switches to QEMU's monitor and back. The guest gets a network card on QEMU's user-mode \
            network (it reaches the outside through this host), and its SSH port is forwarded to a free \
            port on 127.0.0.1, which kiln prints.

            The image is not changed: the guest's writes go to a temporary overlay, dropped when QEMU ends, \
            unless --write is given. --firmware and --machine are those of kiln test.
            """
    )

    @Argument(help: "The image (raw, qcow2, vmdk, vhd, vhdx, vdi).")
    var image: String

    @Option(
        help: "The firmware: bios (SeaBIOS; the default for x86_64 images) or uefi (OVMF; AAVMF for aarch64 images).")
    var firmware: TestCommand.FirmwareChoice?

    @Option(help: "The virtual hardware: virtio, vmware (PVSCSI, VMXNET3), virtualbox (AHCI, E1000), hyperv (IDE).")
    var machine: TestCommand.MachineChoice?

    @Option(help: "auto (KVM unless it is unusable or failed on this host before, else TCG), kvm, or tcg.")
    var accel: Accelerator = .auto

    @Option(help: "Guest memory in MiB.")
    var memory = 1024

    @Option(help: "Guest CPUs.")
    var cpus = 2

    @Flag(help: "Keep the guest's writes in the image.")
    var write = false

    func validate() throws {
        guard (128...1_048_576).contains(memory) else { throw ValidationError("--memory must be 128 to 1048576 MiB") }
        guard (1...256).contains(cpus) else { throw ValidationError("--cpus must be 1 to 256") }
    }

    func run() async throws {
        let architecture = try TestCommand.checkBootable(image)
        let (firmware, machine) = try TestCommand.hardware(
            for: architecture, image: image, firmware: self.firmware, machine: self.machine)
        var run = ImageRun(image: image)
        run.architecture = architecture
        run.firmware = firmware == .uefi ? .uefi : .bios
        run.hardware = VirtualHardware(rawValue: machine.rawValue) ?? .virtio
        run.accelerator = accel
        run.memoryMiB = memory
        run.cpus = cpus
        run.writable = write
        if run.firmware == .uefi && !FileManager.default.fileExists(atPath: run.uefiFirmware.code) {
            throw CommandFailure(
                "UEFI firmware not found at \(run.uefiFirmware.code)",
                hint: "install Debian's \(architecture == .aarch64 ? "qemu-efi-aarch64" : "ovmf") package")
        }
        let work = NSTemporaryDirectory() + "kiln-run-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let plan: ImageRun.Plan
        do {
            plan = try run.plan(workDirectory: work)
        } catch {
            throw CommandFailure("\(image): \(error.message)")
        }
        let console = Console.standardError
        console.write(
            "kiln: booting \(image) (\(plan.format), \(firmware.rawValue), \(machine.rawValue), "
                + "\(plan.accelerator.rawValue))\(write ? "" : "; its writes are dropped at the end")")
        console.write("kiln: SSH to the guest: ssh -p \(plan.sshPort) USER@127.0.0.1")
        console.write("kiln: the console follows; Ctrl-a x quits, Ctrl-a c switches to QEMU's monitor")
        let pid: pid_t
        do {
            pid = try ImageRun.spawn(plan.arguments)
        } catch {
            throw CommandFailure(error.message)
        }
        Interruption.onInterrupt {
            kill(pid, SIGTERM)
            try? FileManager.default.removeItem(atPath: work)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let signalled = status & 0x7F
        let code = (status >> 8) & 0xFF
        if signalled != 0 {
            throw CommandFailure("QEMU ended by signal \(signalled)")
        }
        if code != 0 {
            throw CommandFailure("QEMU ended with status \(code)")
        }
        console.write("kiln: QEMU ended")
    }
}
