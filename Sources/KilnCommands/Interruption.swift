import Foundation
import KilnSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Every signal that would end kiln (SIGINT, SIGTERM, SIGHUP from a closed terminal or SSH session,
/// SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM) and a closed output pipe (SIGPIPE, as in `kiln convert --json |
/// head -1`): stop what runs, remove unfinished outputs, exit 128 + the signal's number.
enum Interruption {
    /// The signals whose default action ends the process, caught so that kiln cleans up first.
    static let terminating: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM]

    private static let cleanups = CleanupList()
    private static let signalled = CleanupList()

    /// The signal that interrupted kiln, if one did. Work that fails because its child was
    /// stopped must still end with the signal's exit code, not as a failure of its own.
    static var received: Int32? { signalled.signal }

    /// Work to do when kiln is interrupted (stop QEMU, for one).
    static func onInterrupt(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.add(cleanup)
    }

    /// Each terminating signal runs a handler that writes its number to a pipe, and one thread of
    /// kiln's own reads the pipe and cleans up. A signal sent to a process goes to any one of its
    /// threads: a handler runs in whichever it is, where a dispatch source's signal, ignored in threads
    /// that had not blocked it, was now and then lost (a SIGHUP that never stopped a conversion). The
    /// handler does only what a handler may (`write`); exec gives children the default actions back.
    static func install() {
        // A write to a closed pipe fails with EPIPE instead, which Console turns into `terminate`:
        // that way the partial outputs go too.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        signalPipe = fds[1]
        let reader = fds[0]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(reader, &byte, 1)
                if count == 1 { terminate(Int32(byte)) }
                if count < 0 && errno != EINTR { return }
            }
        }
        thread.name = "kiln-signals"
        thread.start()
        for signalNumber in terminating {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signalNumber in
                var byte = UInt8(truncatingIfNeeded: signalNumber)
                _ = write(Interruption.signalPipe, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
        }
    }

    /// The pipe's write end, set once by `install` before any handler can run.
    nonisolated(unsafe) static var signalPipe: Int32 = -1

    /// Ends kiln as `signalNumber` would, once its children are stopped and its unfinished outputs
    /// removed.
    static func terminate(_ signalNumber: Int32) -> Never {
        signalled.record(signalNumber)
        cleanups.runAll()
        AtomicOutput.discardAll()
        exit(128 + signalNumber)
    }

    private final class CleanupList: Sendable {
        private let items = Mutex<[@Sendable () -> Void]>([])
        private let received = Mutex<Int32?>(nil)
        func add(_ item: @escaping @Sendable () -> Void) { items.withLock { $0.append(item) } }
        func runAll() { items.withLock { $0 }.forEach { $0() } }
        func record(_ signal: Int32) { received.withLock { $0 = $0 ?? signal } }
        var signal: Int32? { received.withLock { $0 } }
    }
}
