import Foundation
import KilnSupport

/// kiln's content-addressed download cache: every file lives under the SHA-256 it was verified
/// against, `<root>/debs/sha256/<hex>` for packages and `<root>/indexes/sha256/<hex>` for
/// compressed Packages indexes (and `<root>/files/sha256/<hex>` for files named by URL). A file appears there only after its size and digest matched
/// (it is written under a temporary name and renamed), so presence means verified.
package struct PackageCache: Sendable {
    package enum Kind: String, Sendable {
        case debs
        case indexes
        /// Files a description names by URL.
        case files
    }

    package let root: String

    package init(root: String) {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// Where the file with this digest is (or would be) kept.
    package func path(_ kind: Kind, sha256: String) -> String { "\(root)/\(kind.rawValue)/sha256/\(sha256)" }

    /// Whether the file with this digest is in the cache.
    package func contains(_ kind: Kind, sha256: String) -> Bool {
        FileManager.default.fileExists(atPath: path(kind, sha256: sha256))
    }

    /// Downloads `url` into the cache unless it is there, checking `size` and `sha256` before the
    /// file gets its final name. Returns the cached path.
    func store(
        _ url: String, kind: Kind, sha256: String, size: Int64, fetcher: HTTPFetcher,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws(PackagesError) -> String {
        let destination = path(kind, sha256: sha256)
        if FileManager.default.fileExists(atPath: destination) { return destination }
        try makeDirectory("\(root)/\(kind.rawValue)/sha256")
        let output: AtomicOutput
        do {
            output = try AtomicOutput(destination)
        } catch {
            throw PackagesError(.cache, "cannot write \(destination)", cause: error.reason)
        }
        defer { output.discard() }
        // One retry: a mirror behind a load balancer drops the odd connection.
        let fetched: FetchedFile
        do {
            fetched = try await fetcher.download(url, to: output.temporaryPath, progress: progress)
        } catch  where error.code == .network && !Task.isCancelled {
            fetched = try await fetcher.download(url, to: output.temporaryPath, progress: progress)
        }
        guard fetched.size == size else {
            throw PackagesError(.integrity, "\(url): size \(fetched.size) differs from the expected \(size)")
        }
        guard fetched.sha256 == sha256 else {
            throw PackagesError(.integrity, "\(url): SHA-256 \(fetched.sha256) differs from the expected \(sha256)")
        }
        do {
            try output.commit()
        } catch {
            throw PackagesError(.cache, "cannot write \(destination)", cause: error.reason)
        }
        return destination
    }

    func makeDirectory(_ path: String) throws(PackagesError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw PackagesError(.cache, "cannot create \(path)", cause: error.localizedDescription)
        }
    }
}
