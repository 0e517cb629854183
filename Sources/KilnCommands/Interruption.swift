#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import KilnSupport

/// Every signal that would end kiln (SIGINT, SIGTERM, SIGHUP from a closed terminal or SSH session,
/// SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM) and a closed output pipe (SIGPIPE, as in `kiln convert --json |
/// head -1`): stop what runs, remove unfinished outputs, exit 128 + the signal's number.
enum Interruption {
    /// The signals whose default action ends the process, caught so that kiln cleans up first.
    static let terminating: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM]

    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let cleanups = CleanupList()
    private static let signalled = CleanupList()

    /// The signal that interrupted kiln, if one did. Work that fails because its child was
    /// stopped must still end with the signal's exit code, not as a failure of its own.
    static var received: Int32? { signalled.signal }

    /// Work to do when kiln is interrupted (stop QEMU, for one).
    static func onInterrupt(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.add(cleanup)
    }

    static func install() {
        // A write to a closed pipe fails with EPIPE instead, which Console turns into `terminate`:
        // that way the partial outputs go too.
        signal(SIGPIPE, SIG_IGN)
        for signalNumber in terminating {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { terminate(signalNumber) }
            source.resume()
            sources.append(source)
        }
    }

    /// Ends kiln as `signalNumber` would, once its children are stopped and its unfinished outputs
    /// removed.
    static func terminate(_ signalNumber: Int32) -> Never {
        signalled.record(signalNumber)
        cleanups.runAll()
        AtomicOutput.discardAll()
        exit(128 + signalNumber)
    }

    private final class CleanupList: @unchecked Sendable {
        // @unchecked: every access holds `lock`.
        private let lock = NSLockLite()
        private var items: [@Sendable () -> Void] = []
        private var received: Int32?
        func add(_ item: @escaping @Sendable () -> Void) { lock.withLock { items.append(item) } }
        func runAll() { lock.withLock { items }.forEach { $0() } }
        func record(_ signal: Int32) { lock.withLock { received = received ?? signal } }
        var signal: Int32? { lock.withLock { received } }
    }
}

/// A pthread mutex, so that this file needs no Foundation.
private final class NSLockLite: @unchecked Sendable {
    // @unchecked: the mutex itself is the synchronisation.
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
