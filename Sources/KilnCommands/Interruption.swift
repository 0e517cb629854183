#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import KilnSupport

/// SIGINT and SIGTERM: stop what runs, remove unfinished outputs, exit 130 or 143.
enum Interruption {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let cleanups = CleanupList()

    /// Work to do when kiln is interrupted (stop QEMU, for one).
    static func onInterrupt(_ cleanup: @escaping @Sendable () -> Void) {
        cleanups.add(cleanup)
    }

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
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
        func add(_ item: @escaping @Sendable () -> Void) { lock.withLock { items.append(item) } }
        func runAll() { lock.withLock { items }.forEach { $0() } }
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
