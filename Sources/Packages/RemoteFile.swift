import Foundation
import KilnSupport
import SystemPackage

/// A file a description names by URL (its `files:`), pinned in the lockfile like a package: the
/// first `kiln lock` downloads it and records its size and SHA-256, and later builds fetch exactly
/// those bytes or fail.
package struct RemoteFile: Codable, Equatable, Sendable {
    package var url: String
    package var size: Int64
    package var sha256: String

    package init(url: String, size: Int64, sha256: String) {
        self.url = url
        self.size = size
        self.sha256 = sha256
    }
}

extension PackageCache {
    /// Downloads each URL whatever it holds now, and pins what arrived. The files enter the cache
    /// under their digests (`<root>/files/sha256/<hex>`).
    ///
    /// - Returns: one pin per distinct URL, sorted by URL.
    package func pin(_ urls: [String], progress: ProgressSink = .none) async throws(PackagesError) -> [RemoteFile] {
        let urls = Array(Set(urls)).sorted()
        guard !urls.isEmpty else { return [] }
        progress(.step("download", "fetching \(urls.count) file\(urls.count == 1 ? "" : "s") named by URL"))
        let directory = "\(root)/\(Kind.files.rawValue)/sha256"
        try makeDirectory(directory)
        let fetcher = HTTPFetcher(connections: 4)
        var pins: [RemoteFile] = []
        for url in urls {
            let staging = "\(directory)/.download-\(UUID().uuidString)"
            guard FileManager.default.createFile(atPath: staging, contents: nil) else {
                throw PackagesError(.cache, "cannot write \(staging)")
            }
            defer { unlink(staging) }
            let fetched = try await fetcher.download(url, to: staging, progress: { _ in })
            let destination = path(.files, sha256: fetched.sha256)
            guard rename(staging, destination) == 0 else {
                throw PackagesError(.cache, "cannot write \(destination)", cause: Errno(rawValue: errno).description)
            }
            pins.append(RemoteFile(url: url, size: fetched.size, sha256: fetched.sha256))
        }
        return pins
    }

    /// The cached copy of each pinned file, downloading and checking the missing ones.
    ///
    /// - Parameter offline: use only the cache; a missing file is an error that names its URL.
    /// - Returns: the cached path of each URL.
    package func fetch(_ files: [RemoteFile], offline: Bool = false) async throws(PackagesError) -> [String: String] {
        var paths: [String: String] = [:]
        let fetcher = HTTPFetcher(connections: 4)
        for file in files {
            if !contains(.files, sha256: file.sha256) && offline {
                throw PackagesError(.offline, "--offline: \(file.url) is not in the cache \(root)")
            }
            paths[file.url] = try await store(
                file.url, kind: .files, sha256: file.sha256, size: file.size, fetcher: fetcher)
        }
        return paths
    }
}
