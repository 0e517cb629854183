import Foundation
import KilnSupport
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// One QEMU process whose serial console (and QEMU's own messages) kiln reads live through a pipe,
/// line by line, keeping the last lines for error messages and everything in a log file.
final class ConsoleMachine: Sendable {
    /// What the watcher decides after seeing output.
    enum Verdict: Sendable {
        case keepWaiting
        case finished
    }

    /// How a wait ended without an error.
    enum Ending: Sendable {
        /// The watcher said `.finished`; QEMU may still run.
        case finished
        /// QEMU ended by itself.
        case exited(Subprocess.Termination)
    }

    private struct State {
        var pending: [String] = []
        var partial: [UInt8] = []
        var tail: [String] = []
        var lastOutput = ContinuousClock.now
        /// The last line that was not a heartbeat: when the guest's work last said something.
        var lastActivity = ContinuousClock.now
        var endOfOutput = false
        /// Something happened since `watch` last looked (output, its end, a limit's time, cancellation).
        var changed = false
        /// `watch` asleep until something happens.
        var waiter: CheckedContinuation<Void, Never>?
    }

    static let tailLength = 30

    let process: Subprocess
    private let state = Mutex(State())
    private let logPath: String?

    /// - Parameters:
    ///   - logPath: a file that receives everything the console and QEMU print.
    ///   - typing: whether `type(_:)` may send keystrokes to the serial console (QEMU's standard input).
    init(arguments: [String], logPath: String?, typing: Bool = false) {
        process = Subprocess(arguments, output: .pipe, writableInput: typing)
        self.logPath = logPath
    }

    /// Sends `text` to the serial console, as typed; false if QEMU no longer reads it. Nothing typed is
    /// logged: it may be a passphrase.
    func type(_ text: String) -> Bool {
        guard let handle = process.inputHandle else { return false }
        let bytes = Array(text.utf8)
        // A QEMU that has just ended must not end kiln with SIGPIPE: the signal is blocked on this thread
        // while writing, and one it raised is taken before it is unblocked.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        let written = (try? FileDescriptor(rawValue: handle.fileDescriptor).writeAll(bytes)) != nil
        var pending = sigset_t()
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 {
            var zero = timespec()
            _ = sigtimedwait(&pipeSignal, nil, &zero)
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        return written
    }

    var commandLine: String { process.commandLine }

    /// The last lines printed (the partial last line included), oldest first.
    var tail: [String] {
        state.withLock { state in
            var lines = state.tail
            if !state.partial.isEmpty { lines.append(Self.text(state.partial)) }
            return Array(lines.suffix(Self.tailLength))
        }
    }

    func start() throws(BuildVMError) {
        do {
            try process.start()
        } catch {
            throw BuildVMError(.qemu, "cannot start QEMU: \(error)")
        }
        guard let handle = process.outputHandle else { return }
        let fd = FileDescriptor(rawValue: handle.fileDescriptor)
        let log = logPath.flatMap {
            try? FileDescriptor.open(
                FilePath($0), .writeOnly, options: [.create, .append, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644))
        }
        // A thread of its own: the read blocks for as long as QEMU runs.
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 14)
            while true {
                // An error other than EINTR (which the read retries) ends the output, as its end does.
                let count = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
                if count == 0 { break }
                _ = try? log?.writeAll(buffer[0..<count])
                self.received(buffer[0..<count])
            }
            try? log?.close()
            self.state.withLock { $0.endOfOutput = true }
            self.wake()
            _ = handle  // keeps the descriptor open until the reading is done
        }
        thread.start()
    }

    private func received(_ bytes: ArraySlice<UInt8>) {
        defer { wake() }
        state.withLock { state in
            state.lastOutput = ContinuousClock.now
            for byte in bytes {
                if byte == 0x0A {
                    let line = Self.text(state.partial)
                    state.partial.removeAll(keepingCapacity: true)
                    // Heartbeats show that the guest answers; they are kept out of the tail.
                    if line == GuestScripts.heartbeatLine { continue }
                    state.lastActivity = ContinuousClock.now
                    state.pending.append(line)
                    state.tail.append(line)
                    if state.tail.count > Self.tailLength * 2 {
                        state.tail.removeFirst(state.tail.count - Self.tailLength)
                    }
                } else {
                    state.partial.append(byte)
                }
            }
        }
    }

    /// A console line without its carriage return or the terminal escapes firmware likes to print.
    private static func text(_ bytes: [UInt8]) -> String {
        var clean: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x1B {
                // CSI: ESC [ parameters final-byte (0x40...0x7E).
                index += 1
                if index < bytes.count && bytes[index] == 0x5B {
                    index += 1
                    while index < bytes.count && !(0x40...0x7E).contains(bytes[index]) { index += 1 }
                }
                index += 1
                continue
            }
            if byte != 0x0D && byte != 0 { clean.append(byte) }
            index += 1
        }
        return String(decoding: clean, as: UTF8.self)
    }

    /// Feeds every new line (and, with `partialLines`, an unfinished last line: a prompt has no
    /// newline) to `watch` until it says `.finished`, QEMU ends, or a limit passes. On a limit or
    /// cancellation QEMU is stopped and an error with the last console lines is thrown.
    ///
    /// - Parameters:
    ///   - idleTimeout: longest silence on the console (heartbeats count: the guest answers).
    ///   - stallTimeout: longest time without a line other than a heartbeat (the job is stuck).
    ///   - deadline: the latest time to finish at all.
    func watch(
        idleTimeout: Duration?, stallTimeout: Duration? = nil, deadline: ContinuousClock.Instant?,
        partialLines: Bool = false,
        _ watch: (String) throws(BuildVMError) -> Verdict
    ) async throws(BuildVMError) -> Ending {
        var seenPartial = ""
        while true {
            let (lines, partial, quietSince, activeSince, ended) = state.withLock { state in
                let lines = state.pending
                state.pending.removeAll()
                state.changed = false
                return (lines, Self.text(state.partial), state.lastOutput, state.lastActivity, state.endOfOutput)
            }
            for line in lines {
                if try watch(line) == .finished { return .finished }
            }
            if partialLines && !partial.isEmpty && partial != seenPartial {
                seenPartial = partial
                if try watch(partial) == .finished { return .finished }
            }
            // The tail is taken before QEMU is stopped: its "terminating on signal" line says nothing.
            if Task.isCancelled {
                let lines = tail
                await stop()
                throw BuildVMError(.interrupted, "interrupted; QEMU stopped", consoleTail: lines)
            }
            let limits: [(at: ContinuousClock.Instant, error: String)] = [
                idleTimeout.map {
                    (quietSince + $0, "the guest printed nothing for \(Self.seconds($0)) s; QEMU stopped")
                },
                stallTimeout.map {
                    (
                        activeSince + $0,
                        "the guest's job printed nothing for \(Self.seconds($0)) s (the guest still answered); QEMU stopped"
                    )
                },
                deadline.map { ($0, "the guest did not finish in time; QEMU stopped") },
            ].compactMap { $0 }
            let now = ContinuousClock.now
            if let passed = limits.first(where: { now > $0.at }) {
                let lines = tail
                await stop()
                throw BuildVMError(.timeout, passed.error, consoleTail: lines)
            }
            // QEMU closed its output: it is ending, and every line it printed has been seen. A QEMU
            // that does not end after all is killed at the next limit, or on cancellation.
            if ended { return .exited(await exit(killingAt: limits.map(\.at).min())) }
            await nextChange(orAt: limits.map(\.at).min())
        }
    }

    /// Returns once something `watch` looks at has changed since it last looked, at `instant`, or when
    /// the task is cancelled, whichever comes first.
    private func nextChange(orAt instant: ContinuousClock.Instant?) async {
        // A timer cancelled below (something else woke the watcher first) must not wake it again:
        // that wake would start the next timer, whose cancellation would wake it again, and so on,
        // a loop that cost a tenth of a core and 6 MB a second while the guest ran.
        let timer = instant.map { instant in
            Task { [self] in
                guard (try? await Task.sleep(until: instant + .milliseconds(1), clock: .continuous)) != nil else {
                    return
                }
                wake()
            }
        }
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.changed || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake()
        }
    }

    /// QEMU's termination, once it ends by itself, or is killed at `instant` or on cancellation.
    private func exit(killingAt instant: ContinuousClock.Instant?) async -> Subprocess.Termination {
        let timer = instant.map { instant in
            Task { [process] in
                try? await Task.sleep(until: instant, clock: .continuous)
                if !Task.isCancelled { process.killNow() }
            }
        }
        defer { timer?.cancel() }
        return await withTaskCancellationHandler {
            await process.wait()
        } onCancel: {
            killNow()
        }
    }

    /// Tells a waiting `watch` to look again (from the reader thread, a timer or a cancellation).
    private func wake() {
        let waiter = state.withLock { state in
            state.changed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Runs `body`, killing QEMU at once if the task is cancelled meanwhile.
    func killingOnCancel<T: Sendable>(
        _ body: () async throws(BuildVMError) -> T
    ) async throws(BuildVMError) -> T {
        let result: Result<T, BuildVMError> = await withTaskCancellationHandler {
            do throws(BuildVMError) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        } onCancel: {
            killNow()
        }
        return try result.get()
    }

    /// Stops QEMU (SIGTERM, then SIGKILL) and waits until it is gone.
    @discardableResult
    func stop() async -> Subprocess.Termination {
        await process.stop(grace: .seconds(2))
    }

    /// Kills QEMU at once, from any thread: the path for signal handlers and task cancellation.
    func killNow() { process.killNow() }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}
