#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import KilnSupport

/// SIGINT and SIGTERM: stop what runs, remove unfinished outputs, exit 130 or 143.
enum Interruption {
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
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                signalled.record(signalNumber)
                cleanups.runAll()
                AtomicOutput.discardAll()
                exit(128 + signalNumber)
            }
            source.resume()
            sources.append(source)
        }
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
