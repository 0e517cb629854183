import Foundation
import KilnSupport
import Synchronization

/// A locked package and where its verified `.deb` is in the cache.
package struct LocalPackage: Sendable, Equatable {
    package var package: Lockfile.Package
    /// `<cache>/debs/sha256/<hex>`.
    package var path: String
}

extension PackageCache {
    /// The cached files of every package in `lockfile`, downloading the missing ones (at most
    /// `concurrency` at a time), each checked against the lockfile's size and SHA-256 before it
    /// enters the cache.
    ///
    /// - Parameters:
    ///   - offline: use only the cache; anything missing is an error that names it.
    ///   - progress: `download` steps and progress in bytes done of bytes to fetch.
    /// - Returns: the packages in lockfile order.
    package func fetch(
        _ lockfile: Lockfile, offline: Bool = false, concurrency: Int = 8, progress: ProgressSink = .none
    ) async throws(PackagesError) -> [LocalPackage] {
        let missing = lockfile.packages.filter { !contains(.debs, sha256: $0.sha256) }
        if !missing.isEmpty && offline {
            let shown = missing.prefix(10).map(\.label).joined(separator: ", ")
            let more = missing.count > 10 ? " and \(missing.count - 10) more" : ""
            throw PackagesError(
                .offline,
                "--offline: \(missing.count) package\(missing.count == 1 ? " is" : "s are") not in the cache \(root): \(shown)\(more)"
            )
        }
        if !missing.isEmpty {
            let total = missing.reduce(Int64(0)) { $0 + $1.size }
            progress(.step("download", "downloading \(missing.count) packages (\(total / 1_000_000) MB)"))
            let fetcher = HTTPFetcher(connections: concurrency)
            let counter = ByteCounter(total: total, sink: progress)
            var failures: [PackagesError] = []
            await withTaskGroup(of: PackagesError?.self) { group in
                var queue = missing[...]
                func startNext() {
                    guard let package = queue.popFirst() else { return }
                    group.addTask { await self.storeReporting(package, fetcher: fetcher, counter: counter) }
                }
                for _ in 0..<max(1, concurrency) { startNext() }
                for await failure in group {
                    if let failure {
                        failures.append(failure)
                        group.cancelAll()
                        queue = []
                    }
                    startNext()
                }
            }
            if let first = failures.first { throw first }
            counter.finish()
        }
        return lockfile.packages.map { LocalPackage(package: $0, path: path(.debs, sha256: $0.sha256)) }
    }
}

extension PackageCache {
    /// One download, its failure as a value (see `ArchiveClient.suite` for why not in the closure).
    fileprivate func storeReporting(_ package: Lockfile.Package, fetcher: HTTPFetcher, counter: ByteCounter) async
        -> PackagesError?
    {
        do {
            _ = try await store(
                package.url, kind: .debs, sha256: package.sha256, size: package.size, fetcher: fetcher,
                progress: { counter.add($0) })
            return nil
        } catch {
            return error
        }
    }
}

/// Adds up bytes from concurrent downloads and reports at most every MiB, so that `--json` stays
/// readable.
private final class ByteCounter: Sendable {
    private let total: Int64
    private let sink: ProgressSink
    private let counts = Mutex<(done: Int64, reported: Int64)>((0, 0))

    init(total: Int64, sink: ProgressSink) {
        self.total = total
        self.sink = sink
    }

    func add(_ bytes: Int64) {
        let report: Int64? = counts.withLock { counts in
            counts.done += bytes
            guard counts.done - counts.reported >= 1 << 20 else { return nil }
            counts.reported = counts.done
            return counts.done
        }
        if let report { sink(.progress("download", completed: report, total: total)) }
    }

    func finish() { sink(.progress("download", completed: total, total: total)) }
}
