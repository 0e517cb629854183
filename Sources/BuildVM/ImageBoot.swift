import Foundation
import KilnSupport

/// Boots a disk image under QEMU from its own boot loader and waits for a text on the serial
/// console: what `kiln test` does.
public struct ImageBoot: Sendable {
    public var image: String
    public var firmware: Firmware = .bios
    /// The disk controller and network card the image is booted on, as its target hypervisor has them.
    public var hardware: VirtualHardware = .virtio
    /// What to wait for ("login:").
    public var marker = "login:"
    public var timeout: Duration = .seconds(300)
    public var accelerator: Accelerator = .tcg
    public var memoryMiB = 1024
    public var cpus = 2
    public var consoleLog: String?
    /// OVMF's code and variable-store templates.
    public var ovmfCode = "/usr/share/OVMF/OVMF_CODE.fd"
    public var ovmfVariables = "/usr/share/OVMF/OVMF_VARS.fd"
    public var qemu = "qemu-system-x86_64"

    public init(image: String) { self.image = image }

    public struct Outcome: Sendable {
        /// QEMU's format name for the image.
        public var format: String
        /// From QEMU's start to the marker.
        public var elapsed: Duration
        public var consoleTail: [String]
    }

    /// Boots, waits for `marker`, stops QEMU. The image is never written (QEMU's snapshot mode).
    ///
    /// - Throws: `BuildVMError` with the console's last lines when the marker does not appear in time
    ///   or QEMU ends first; `.interrupted` on cancellation.
    public func run(workDirectory: String, progress: ProgressSink = .none) async throws(BuildVMError) -> Outcome {
        let format = try ImageFormat.detect(image)
        var command = QEMUCommand()
        command.executable = qemu
        command.accelerator = accelerator == .kvm ? .kvm : .tcg
        command.memoryMiB = memoryMiB
        command.cpus = cpus
        command.hardware = hardware
        command.disks = [VirtualDisk(path: image, format: format.rawValue, readOnly: false, snapshot: true)]
        var variables: String?
        if firmware == .uefi {
            let copy = "\(workDirectory)/kiln-ovmf-vars-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).fd"
            do {
                try FileManager.default.copyItem(atPath: ovmfVariables, toPath: copy)
            } catch {
                throw BuildVMError(
                    .io, "cannot copy the UEFI variable store \(ovmfVariables): \(error.localizedDescription)")
            }
            variables = copy
            command.uefi = (ovmfCode, copy)
        }
        defer { if let variables { unlink(variables) } }

        let machine = ConsoleMachine(arguments: command.arguments, logPath: consoleLog)
        progress(
            .step("test", "booting \(image) (\(format.rawValue), \(firmware.rawValue), \(hardware.summary))"))
        let started = ContinuousClock.now
        // Registered first, so that a signal arriving during the start still finds it.
        RunningQEMU.add(machine)
        defer { RunningQEMU.remove(machine) }
        try machine.start()
        let marker = self.marker
        let timeout = self.timeout
        let ending = try await machine.killingOnCancel { () async throws(BuildVMError) -> ConsoleMachine.Ending in
            do throws(BuildVMError) {
                return try await machine.watch(idleTimeout: nil, deadline: started + timeout, partialLines: true) {
                    line in line.contains(marker) ? .finished : .keepWaiting
                }
            } catch  where error.code == .timeout {
                throw BuildVMError(
                    .timeout, "\"\(marker)\" did not appear on the console within \(ConsoleMachine.seconds(timeout)) s",
                    consoleTail: error.consoleTail)
            }
        }
        let elapsed = ContinuousClock.now - started
        await machine.stop()
        let tail = machine.tail
        if case .exited(let termination) = ending {
            throw BuildVMError(.qemu, "QEMU ended (\(termination)) before \"\(marker)\" appeared", consoleTail: tail)
        }
        return Outcome(format: format.rawValue, elapsed: elapsed, consoleTail: tail)
    }
}
