import Dispatch
import Foundation
import Synchronization

/// The one thread that starts kiln's children, alive as long as kiln.
///
/// Every child is told to die with kiln (`PR_SET_PDEATHSIG`, through util-linux's `setpriv
/// --pdeathsig`), so that a `kill -9` of kiln leaves no QEMU running. Linux sends that signal when the
/// *thread* that started the child ends, not the process, and the Swift runtime's pool threads end
/// when they idle; a child started from one would be killed in the middle of a build. Children started
/// from this thread are signalled only when kiln itself ends.
package final class SpawnThread: Sendable {
    package static let shared = SpawnThread()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let waiting = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                waiting.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job()
            }
        }
        thread.name = "kiln-spawn"
        thread.start()
    }

    /// Runs `body` on the spawning thread and returns its result; the caller's thread waits meanwhile.
    package func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<T?>(nil)
        jobs.withLock {
            $0.append {
                let value = body()
                result.withLock { $0 = value }
                done.signal()
            }
        }
        waiting.signal()
        done.wait()
        guard let value = result.withLock({ $0 }) else { preconditionFailure("the spawning thread skipped a job") }
        return value
    }
}
