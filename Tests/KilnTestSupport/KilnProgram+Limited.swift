import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How a run of kiln under a time limit ended.
package struct LimitedRun: Sendable {
    /// The exit status, when kiln exited.
    package var code: Int32?
    /// The signal that ended kiln, when one did (a trap is SIGILL or SIGTRAP, an abort SIGABRT).
    package var signal: Int32?
    /// kiln was still running at the deadline and was killed.
    package var timedOut: Bool
    package var output: String
    package var errors: String

    /// Exited 0 or 1: success, or an error reported as such.
    package var endedCleanly: Bool { !timedOut && signal == nil && (code == 0 || code == 1) }
}

extension KilnProgram {
    /// Runs kiln with `arguments`, killing it (SIGKILL) if it is still running after `timeout`.
    package static func run(_ arguments: [String], timeout: Duration, cwd: String? = nil) throws -> LimitedRun {
        let process = process(arguments, cwd: cwd)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let killed = KilledFlag()
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let timer = DispatchWorkItem {
            killed.set()
            kill(pid, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: timer)
        let errors = DrainedPipe(err.fileHandleForReading)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        let bySignal = process.terminationReason == .uncaughtSignal
        return LimitedRun(
            code: bySignal ? nil : process.terminationStatus, signal: bySignal ? process.terminationStatus : nil,
            timedOut: killed.isSet, output: String(decoding: output, as: UTF8.self),
            errors: String(decoding: errors.wait(), as: UTF8.self))
    }
}

private final class KilledFlag: @unchecked Sendable {
    // @unchecked: `value` is only touched while holding `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// A pipe read to its end on a thread of its own.
final class DrainedPipe: @unchecked Sendable {
    // @unchecked: `data` is written by the reading thread before `done` is signalled, and read after.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
