import Foundation
import KilnSupport
import Synchronization

/// Boots a disk image under QEMU from its own boot loader and waits for a text on the serial
/// console: what `kiln test` does.
package struct ImageBoot: Sendable {
    package var image: String
    package var firmware: Firmware = .bios
    /// The disk controller and network card the image is booted on, as its target hypervisor has them.
    package var hardware: VirtualHardware = .virtio
    /// What to wait for ("login:").
    package var marker = "login:"
    package var timeout: Duration = .seconds(300)
    package var accelerator: Accelerator = .tcg
    package var memoryMiB = 1024
    package var cpus = 2
    package var consoleLog: String?
    /// Typed at each prompt for a LUKS passphrase on the console (the initramfs's for `/`, systemd's for
    /// the others); nil fails the boot at the first such prompt.
    package var passphrase: String?
    /// The machine the image is for: aarch64 images boot on QEMU's `virt` board with AAVMF.
    package var architecture = Architecture.x86_64
    /// The QEMU program; nil: the architecture's.
    package var qemu: String?

    package init(image: String) { self.image = image }

    /// The UEFI firmware for the image's architecture: code and variable-store template.
    package var uefiFirmware: (code: String, variables: String) { architecture.uefiFirmware }

    private var qemuProgram: String { qemu ?? architecture.qemuSystem }

    package struct Outcome: Sendable {
        /// QEMU's format name for the image.
        package var format: String
        /// From QEMU's start to the marker.
        package var elapsed: Duration
        package var consoleTail: [String]
        /// What the guest ran under (`.auto` resolved).
        package var accelerator: Accelerator = .tcg
    }

    /// Boots, waits for `marker`, stops QEMU. The image is never written (QEMU's snapshot mode).
    ///
    /// - Throws: `BuildVMError` with the console's last lines when the marker does not appear in time
    ///   or QEMU ends first; `.interrupted` on cancellation.
    ///
    /// With `.auto`, KVM unless /dev/kvm cannot be opened or KVM failed on this host before
    /// (`KVMProbe`); a KVM guest that QEMU ends at once is recorded as such and booted again under TCG.
    package func run(workDirectory: String, progress: ProgressSink = .none) async throws(BuildVMError) -> Outcome {
        try architecture.requireQEMU(qemu)
        if architecture == .aarch64 && (firmware != .uefi || hardware != .virtio) {
            throw BuildVMError(.io, "aarch64 images boot with UEFI on virtio hardware only (QEMU's virt board)")
        }
        if accelerator == .kvm && !architecture.kvmPossible {
            throw BuildVMError(
                .kvm,
                "--accel kvm: KVM runs only guests of the host's own architecture; this image is "
                    + architecture.rawValue)
        }
        guard accelerator == .auto else {
            return try await boot(accelerator, workDirectory: workDirectory, progress: progress)
        }
        guard architecture.kvmPossible, QEMUCommand.kvmDeviceUsable() else {
            return try await boot(.tcg, workDirectory: workDirectory, progress: progress)
        }
        if let known = KVMProbe.recorded(qemu: qemuProgram) {
            if !known.works {
                progress(.warning("test", KVMProbe.brokenBeforeSentence))
                progress(.info("detail", "KVM on \(known.subject): \(known.detail)"))
            }
            return try await boot(known.works ? .kvm : .tcg, workDirectory: workDirectory, progress: progress)
        }
        do {
            let outcome = try await boot(.kvm, workDirectory: workDirectory, progress: progress)
            KVMProbe.record(works: true, detail: "an image booted", qemu: qemuProgram)
            return outcome
        } catch  where error.code == .kvm {
            let detail = ([error.message] + error.consoleTail.suffix(3)).joined(separator: " | ")
            KVMProbe.record(works: false, detail: detail, qemu: qemuProgram)
            progress(.warning("test", KVMProbe.brokenNowSentence))
            progress(.info("detail", "KVM: \(detail)"))
            return try await boot(.tcg, workDirectory: workDirectory, progress: progress)
        }
    }

    private func boot(
        _ accelerator: Accelerator, workDirectory: String, progress: ProgressSink
    ) async throws(BuildVMError) -> Outcome {
        let format = try DiskFormat.qemuName(of: image)
        var command = QEMUCommand()
        command.executable = qemuProgram
        command.architecture = architecture
        command.accelerator = accelerator == .kvm ? .kvm : .tcg
        command.memoryMiB = memoryMiB
        command.cpus = cpus
        command.hardware = hardware
        command.disks = [VirtualDisk(path: image, format: format, readOnly: false, snapshot: true)]
        var variables: String?
        if firmware == .uefi {
            let (code, template) = uefiFirmware
            let copy = "\(workDirectory)/kiln-uefi-vars-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).fd"
            do {
                try FileManager.default.copyItem(atPath: template, toPath: copy)
            } catch {
                throw BuildVMError(
                    .io, "cannot copy the UEFI variable store \(template): \(error.localizedDescription)")
            }
            variables = copy
            command.uefi = (code, copy)
        }
        defer { if let variables { unlink(variables) } }
        var firmwareLog: String?
        if firmware == .bios {
            let path = "\(workDirectory)/kiln-seabios-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
            command.firmwareLog = path
            firmwareLog = path
        }
        defer { if let firmwareLog { unlink(firmwareLog) } }

        let machine = ConsoleMachine(arguments: command.arguments, logPath: consoleLog, typing: passphrase != nil)
        progress(
            .step(
                "test",
                "booting \(image) (\(format), \(architecture.rawValue), \(firmware.rawValue), \(hardware.summary))"))
        let started = ContinuousClock.now
        // Registered first, so that a signal arriving during the start still finds it.
        RunningQEMU.add(machine)
        defer { RunningQEMU.remove(machine) }
        try machine.start()
        // SeaBIOS says it found nothing to boot on its debug port only: watched beside the console.
        let noBootDevice = NoBootDevice()
        let firmwareWatch = firmwareLog.map { path in
            Task.detached {
                while !Task.isCancelled {
                    if let found = NoBootDevice.seaBIOSFailure(in: path) {
                        noBootDevice.record(found)
                        machine.killNow()
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
        }
        defer { firmwareWatch?.cancel() }
        let marker = self.marker
        let timeout = self.timeout
        var unlocking = PassphrasePrompts(passphrase: passphrase)
        func watchForMarker() async throws(BuildVMError) -> ConsoleMachine.Ending {
            try await machine.killingOnCancel { () async throws(BuildVMError) -> ConsoleMachine.Ending in
                do throws(BuildVMError) {
                    return try await machine.watch(idleTimeout: nil, deadline: started + timeout, partialLines: true) {
                        line throws(BuildVMError) in
                        if line.contains(marker) { return .finished }
                        if let reason = NoBootDevice.ovmfFailure(line, marker: marker) {
                            throw BuildVMError(.guest, reason, consoleTail: machine.tail)
                        }
                        if let answer = try unlocking.answer(to: line, tail: machine.tail) {
                            if !machine.type(answer) {
                                throw BuildVMError(.qemu, "QEMU stopped reading the console", consoleTail: machine.tail)
                            }
                            progress(.info("test", "passphrase typed at the console's prompt"))
                        }
                        return .keepWaiting
                    }
                } catch  where error.code == .timeout {
                    throw BuildVMError(
                        .timeout,
                        "\"\(marker)\" did not appear on the console within \(ConsoleMachine.seconds(timeout)) s",
                        consoleTail: error.consoleTail)
                }
            }
        }
        let ending: ConsoleMachine.Ending
        do throws(BuildVMError) {
            ending = try await watchForMarker()
        } catch {
            // A prompt that cannot be answered ends the boot while QEMU still runs: it goes too.
            await machine.stop()
            throw error
        }
        let elapsed = ContinuousClock.now - started
        await machine.stop()
        let tail = machine.tail
        if let reason = noBootDevice.reason {
            throw BuildVMError(.guest, reason, consoleTail: tail)
        }
        if case .exited(let termination) = ending {
            // Some hosts make QEMU abort on a KVM guest's first MSR write ("kvm_buf_set_msrs").
            let kvmFailure = accelerator == .kvm && tail.contains { $0.lowercased().contains("kvm") }
            throw BuildVMError(
                kvmFailure ? .kvm : .qemu, "QEMU ended (\(termination)) before \"\(marker)\" appeared",
                consoleTail: tail)
        }
        return Outcome(format: format, elapsed: elapsed, consoleTail: tail, accelerator: accelerator)
    }
}

/// What the firmware prints when it has tried every boot device and none could be booted, so that
/// `kiln test` fails then rather than at its timeout.
final class NoBootDevice: Sendable {
    private let found = Mutex<String?>(nil)

    func record(_ reason: String) { found.withLock { $0 = $0 ?? reason } }
    var reason: String? { found.withLock { $0 } }

    /// SeaBIOS, on its debug port: "Boot failed: not a bootable disk" for each device tried, then
    /// "No bootable device." (after which it would wait 60 s and reboot).
    static func seaBIOSFailure(in path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains("No bootable device.") else { return nil }
        let failures = text.split(separator: "\n").filter { $0.hasPrefix("Boot failed: ") }
            .map { $0.dropFirst("Boot failed: ".count).trimmingCharacters(in: .whitespaces) }
        let detail = failures.first.map { " (SeaBIOS: \($0))" } ?? ""
        return "the firmware found no bootable device\(detail): the image has no boot loader for BIOS"
    }

    /// OVMF, on the serial console: having failed every boot option, it starts its built-in UEFI
    /// shell (Debian's build) or says that it found no bootable option.
    /// Not when the shell is what the caller waits for (`--expect "UEFI Interactive Shell"`).
    static func ovmfFailure(_ line: String, marker: String) -> String? {
        let texts = ["EFI Internal Shell", "UEFI Interactive Shell", "No bootable option or device was found"]
        guard texts.contains(where: line.contains),
            !texts.contains(where: { $0.contains(marker) || marker.contains($0) })
        else { return nil }
        return "the firmware found no bootable device (OVMF fell back to its UEFI shell): no disk it sees "
            + "has an EFI system partition with a boot loader it can start"
    }
}

/// Answers the console's prompts for a LUKS passphrase: cryptsetup's in the initramfs ("Please unlock
/// disk root_crypt:") and systemd's for the other disks ("Please enter passphrase for disk …").
///
/// A prompt is seen first as an unfinished line, then again as a whole line once the typed newline
/// ends it: that second sight is not a new prompt. A refused passphrase fails the boot at once.
struct PassphrasePrompts {
    var passphrase: String?
    private var answeredLine: String?
    private(set) var answered = 0

    init(passphrase: String?) { self.passphrase = passphrase }

    static let prompts = ["Please unlock disk ", "Please enter passphrase for disk "]
    static let refusals = ["bad password or options", "Passphrase incorrect?", "No key available with this passphrase"]

    /// The text to type for this console line, if it is a new prompt.
    mutating func answer(to line: String, tail: [String]) throws(BuildVMError) -> String? {
        if Self.refusals.contains(where: line.contains) {
            throw BuildVMError(.guest, "the image refused the passphrase: \(line)", consoleTail: tail)
        }
        guard Self.prompts.contains(where: line.contains) else { return nil }
        if let answeredLine, line.hasPrefix(answeredLine) {
            self.answeredLine = nil
            return nil
        }
        guard let passphrase else {
            throw BuildVMError(
                .guest,
                "the image asks for a passphrase (\(line.trimmingCharacters(in: .whitespaces))); give one with --passphrase-file",
                consoleTail: tail)
        }
        answeredLine = line
        answered += 1
        return passphrase + "\n"
    }
}
