import Foundation
import KilnSupport
import Synchronization

/// How to run the builder guest.
package struct GuestRunOptions: Sendable {
    package var accelerator: Accelerator = .auto
    package var memoryMiB = 1024
    package var cpus = 2
    /// Longest time from QEMU's start to `/init`'s first message under TCG. The kernel boots
    /// quietly, so the boot has this deadline instead of the idle timeout.
    package var bootTimeout: Duration = .seconds(120)
    /// Longest silence on the console, once `/init` runs, before the guest counts as hung. The
    /// guest prints a heartbeat every 10 s, so this catches a guest that stopped answering.
    package var idleTimeout: Duration = .seconds(300)
    /// Longest time the job may print nothing but heartbeats (a step that waits for ever). Long:
    /// under TCG on a loaded host, one silent step (update-initramfs) can take many minutes.
    package var stallTimeout: Duration = .seconds(3600)
    /// Longest run in all, if any.
    package var timeout: Duration?
    /// How long a KVM guest gets to reach `/init` before kiln gives up on KVM.
    package var kvmProbeTimeout: Duration = .seconds(20)
    /// A file that receives the whole console.
    package var consoleLog: String?
    /// The QEMU program; nil: the guest architecture's (`qemu-system-x86_64`, `qemu-system-aarch64`).
    package var qemu: String?
    /// Seconds since the epoch that the guest's clock starts at (SOURCE_DATE_EPOCH), so that the
    /// times the guest writes into file systems do not depend on when the build ran. Nil: the host's time.
    package var clockStart: Int?

    package init() {}
}

/// What a finished job reported.
package struct GuestRunResult: Sendable {
    package var accelerator: Accelerator
    /// Every protocol message, in order.
    package var events: [GuestEvent]
    /// The payloads of `result` messages.
    package var results: [String] { events.filter { $0.name == "result" }.map(\.payload) }

    /// The job's reports of one kind, in order; one that does not read is an error naming it.
    package func reports<Report: GuestReport>(_ kind: Report.Type) throws(BuildVMError) -> [Report] {
        var reports: [Report] = []
        for event in events where event.name == Report.event {
            do throws(GuestRecordError) {
                reports.append(try Report(event.record))
            } catch {
                throw BuildVMError(
                    .guest, "the guest's '\(event.name)' report does not read (\(error)): \(event.payload)")
            }
        }
        return reports
    }
    /// From QEMU's start to the guest's first message (`/init` running).
    package var firstMessageAfter: Duration
    /// The guest kernel's uptime in seconds when `/init` first reported.
    package var kernelUptimeAtInit: Double?
    /// From QEMU's start to its end.
    package var elapsed: Duration
}

/// Runs jobs in the builder guest under QEMU.
package struct GuestRunner: Sendable {
    package let guest: BuilderGuest
    package let options: GuestRunOptions

    /// The kernel command line: serial console, quiet, a panic ends QEMU (`-no-reboot`), and what
    /// shortens a boot under TCG (measured, ~3.2 s to /init without, ~1.7 s with): no crypto
    /// self-tests, no PS/2 probing, no TSC watchdog, one UART, and no speculation mitigations (the
    /// guest runs only kiln's job, and retpolines are costly when every instruction is emulated).
    /// arm64's `virt` board has no PS/2, TSC or 8250: its console is the PL011.
    static func kernelArguments(_ architecture: Architecture) -> String {
        var arguments = [
            "console=\(architecture.consoleDevice),115200", "quiet", "panic=-1", "rdinit=/init", "cryptomgr.notests",
            "mitigations=off",
        ]
        if architecture == .x86_64 {
            arguments += ["i8042.nokbd", "i8042.noaux", "no_timer_check", "tsc=reliable", "8250.nr_uarts=1"]
        }
        return arguments.joined(separator: " ")
    }

    /// The QEMU program that runs the guest.
    var qemu: String { options.qemu ?? guest.architecture.qemuSystem }

    package init(guest: BuilderGuest, options: GuestRunOptions = GuestRunOptions()) {
        self.guest = guest
        self.options = options
    }

    /// Boots the guest with `targetDisk` (a raw file, if any) and the job on a read-only input
    /// disk written into `workDirectory`; returns when the guest has reported and powered off.
    /// `fileSystemDisk`, if any, is a second writable raw disk (serial `kiln-fs`, `KILN_FS` in the
    /// guest) for the job; `outputDisk`, a raw file if given, is one the job may write results to
    /// (`KILN_OUTPUT`).
    ///
    /// - Throws: `BuildVMError` with the console's last lines when QEMU fails, the guest hangs or
    ///   the job fails; `.interrupted` when the task is cancelled (QEMU is stopped first).
    package func run(
        _ job: GuestJob, targetDisk: String?, fileSystemDisk: String? = nil, outputDisk: String? = nil,
        workDirectory: String,
        progress: ProgressSink = .none
    ) async throws(BuildVMError) -> GuestRunResult {
        let inputDisk = "\(workDirectory)/kiln-input-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).cpio"
        try InputDisk.write(job, to: inputDisk)
        defer { unlink(inputDisk) }
        var disks: [VirtualDisk] = []
        if let targetDisk {
            disks.append(
                VirtualDisk(path: targetDisk, format: "raw", readOnly: false, serial: GuestScripts.targetSerial))
        }
        if let fileSystemDisk {
            disks.append(
                VirtualDisk(path: fileSystemDisk, format: "raw", readOnly: false, serial: GuestScripts.fileSystemSerial)
            )
        }
        disks.append(VirtualDisk(path: inputDisk, format: "raw", readOnly: true, serial: GuestScripts.inputSerial))
        if let outputDisk {
            disks.append(
                VirtualDisk(path: outputDisk, format: "raw", readOnly: false, serial: GuestScripts.outputSerial))
        }

        try guest.architecture.requireQEMU(options.qemu)
        switch options.accelerator {
        case .tcg:
            return try await boot(disks, .tcg, progress: progress)
        case .kvm:
            guard guest.architecture.kvmPossible else {
                throw BuildVMError(
                    .kvm,
                    "--accel kvm: KVM runs only guests of the host's own architecture; this \(guest.architecture.rawValue) "
                        + "guest needs TCG here")
            }
            guard QEMUCommand.kvmDeviceUsable() else {
                throw BuildVMError(.kvm, "--accel kvm: /dev/kvm cannot be opened for reading and writing")
            }
            return try await boot(disks, .kvm, progress: progress)
        case .auto:
            // Another architecture's guest is emulated: there is no KVM to probe.
            if !guest.architecture.kvmPossible { return try await boot(disks, .tcg, progress: progress) }
            if KVMStatus.knownBroken.withLock({ $0 }) {
                progress(.warning("guest", "KVM did not work earlier in this run; using TCG (slower)"))
                return try await boot(disks, .tcg, progress: progress)
            }
            guard QEMUCommand.kvmDeviceUsable() else {
                progress(.warning("guest", "KVM is not available (/dev/kvm cannot be opened); using TCG (slower)"))
                return try await boot(disks, .tcg, progress: progress)
            }
            if let known = KVMProbe.recorded(qemu: qemu), !known.works {
                KVMStatus.knownBroken.withLock { $0 = true }
                progress(.warning("guest", KVMProbe.brokenBeforeSentence))
                progress(.info("detail", "KVM on \(known.subject): \(known.detail)"))
                return try await boot(disks, .tcg, progress: progress)
            }
            do {
                let result = try await boot(disks, .kvm, progress: progress)
                KVMProbe.record(works: true, detail: "a guest reached /init", qemu: qemu)
                return result
            } catch  where error.code == .kvm {
                KVMStatus.knownBroken.withLock { $0 = true }
                let detail = ([error.message] + error.consoleTail.suffix(3)).joined(separator: " | ")
                KVMProbe.record(works: false, detail: detail, qemu: qemu)
                progress(.warning("guest", KVMProbe.brokenNowSentence))
                progress(.info("detail", "KVM: \(detail)"))
                return try await boot(disks, .tcg, progress: progress)
            }
        }
    }

    private func boot(
        _ disks: [VirtualDisk], _ accelerator: Accelerator, progress: ProgressSink
    ) async throws(BuildVMError) -> GuestRunResult {
        var command = QEMUCommand()
        command.executable = qemu
        command.architecture = guest.architecture
        command.accelerator = accelerator
        command.memoryMiB = options.memoryMiB
        command.cpus = options.cpus
        command.kernel = (guest.kernel, guest.initramfs, Self.kernelArguments(guest.architecture))
        command.clockStart = options.clockStart
        command.disks = disks
        let machine = ConsoleMachine(arguments: command.arguments, logPath: options.consoleLog)
        progress(.step("guest", "booting the builder guest (\(accelerator.rawValue))"))
        let started = ContinuousClock.now
        // Registered first, so that a signal arriving during the start still finds it.
        RunningQEMU.add(machine)
        defer { RunningQEMU.remove(machine) }
        try machine.start()
        return try await machine.killingOnCancel { () async throws(BuildVMError) -> GuestRunResult in
            try await follow(machine, accelerator, started: started, progress: progress)
        }
    }

    private func follow(
        _ machine: ConsoleMachine, _ accelerator: Accelerator, started: ContinuousClock.Instant, progress: ProgressSink
    ) async throws(BuildVMError) -> GuestRunResult {
        let deadline = options.timeout.map { started + $0 }
        var parser = GuestProtocolParser()
        var events: [GuestEvent] = []
        var firstMessage: ContinuousClock.Instant?
        var exitStatus: Int?
        var guestError: String?

        var kernelUptime: Double?

        let watcher = { (line: String) throws(BuildVMError) -> ConsoleMachine.Verdict in
            guard let event = parser.parse(line) else { return .keepWaiting }
            if firstMessage == nil { firstMessage = ContinuousClock.now }
            events.append(event)
            let message: GuestMessage
            do throws(GuestRecordError) {
                message = try GuestMessage(event)
            } catch {
                // The guest's own scripts wrote it: a message that does not read is kiln's bug, not the job's.
                throw BuildVMError(
                    .guest, "the guest's '\(event.name)' message does not read (\(error)): \(event.payload)",
                    consoleTail: machine.tail)
            }
            switch message {
            case .step(let text): progress(.step("guest", text))
            case .info(let text): progress(.info("guest", text))
            case .progress(let completed, let total): progress(.progress("guest", completed: completed, total: total))
            case .started(.initStarted, let uptime):
                kernelUptime = uptime
                let seconds = ConsoleMachine.seconds(ContinuousClock.now - started)
                progress(.info("guest", "the builder guest runs /init after \(seconds) s (kernel: \(uptime) s)"))
            case .started(.jobUnpacked, let uptime):
                // The guest's uptime once its disks are found and the job is unpacked: the whole
                // cost of the builder guest before any work of the build's own.
                progress(.info("guest", "the builder guest starts its job \(uptime) s after its kernel started"))
            case .started(.modulesLoaded, _), .result, .report: break
            case .error(let text): guestError = text
            case .exit(let status):
                exitStatus = status
                return .finished
            }
            // The first message ends the first phase (the boot to /init), which has its own deadline.
            return events.count == 1 ? .finished : .keepWaiting
        }

        // First the boot to /init, with a deadline of its own: short under KVM, since a hung KVM
        // guest prints nothing at all.
        let bootDeadline = started + (accelerator == .kvm ? options.kvmProbeTimeout : options.bootTimeout)
        var ending: ConsoleMachine.Ending
        do {
            ending = try await machine.watch(
                idleTimeout: nil, deadline: [bootDeadline, deadline].compactMap { $0 }.min(), watcher)
        } catch  where error.code == .timeout {
            if accelerator == .kvm && deadline.map({ bootDeadline < $0 }) ?? true {
                throw BuildVMError(
                    .kvm,
                    "a KVM guest did not reach /init within \(ConsoleMachine.seconds(options.kvmProbeTimeout)) s",
                    consoleTail: error.consoleTail)
            }
            throw BuildVMError(
                .timeout, "the builder guest did not reach /init in time; QEMU stopped", consoleTail: error.consoleTail)
        }
        if case .exited(let termination) = ending, accelerator == .kvm, firstMessage == nil {
            // Some hosts hang a KVM guest, others make QEMU abort on its first MSR write.
            let tail = machine.tail
            throw BuildVMError(
                .kvm, "a KVM guest ended (\(termination)) before reaching /init: \(tail.last ?? "no output")",
                consoleTail: tail)
        }
        if case .finished = ending, exitStatus == nil {
            ending = try await machine.watch(
                idleTimeout: options.idleTimeout, stallTimeout: options.stallTimeout, deadline: deadline, watcher)
        }

        if case .finished = ending {
            // The guest powers itself off after its last message; after 30 s QEMU is stopped.
            let grace = Task {
                try? await Task.sleep(for: .seconds(30))
                if !Task.isCancelled { await machine.stop() }
            }
            _ = await machine.process.wait()
            grace.cancel()
            await machine.stop()
        }
        let elapsed = ContinuousClock.now - started
        let tail = machine.tail
        if let guestError {
            throw BuildVMError(.guest, "the builder guest failed: \(guestError)", consoleTail: tail)
        }
        guard let exitStatus else {
            if case .exited(let termination) = ending, firstMessage == nil {
                throw BuildVMError(
                    .qemu, "QEMU ended (\(termination)) before the guest started: \(tail.last ?? "no output")",
                    consoleTail: tail)
            }
            throw BuildVMError(.guest, "the builder guest stopped without reporting an exit status", consoleTail: tail)
        }
        guard exitStatus == 0 else {
            throw BuildVMError(.guest, "the job failed with exit status \(exitStatus)", consoleTail: tail)
        }
        return GuestRunResult(
            accelerator: accelerator, events: events, firstMessageAfter: (firstMessage ?? started) - started,
            kernelUptimeAtInit: kernelUptime, elapsed: elapsed)
    }
}

/// What this process learned about KVM: once a KVM guest has hung, later runs go straight to TCG.
enum KVMStatus {
    static let knownBroken = Mutex(false)
}
