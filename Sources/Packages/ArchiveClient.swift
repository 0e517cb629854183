import Crypto
import Foundation
import KilnSupport
import Logging

/// Talks to Debian archives: fetches each suite's `InRelease`, has `gpgv` check its signature,
/// then fetches the Packages indexes it lists (through the cache, checked against the Release's
/// SHA-256 and size) and parses them.
package final class ArchiveClient: Sendable {
    package let architecture: String
    package let cache: PackageCache
    let fetcher: HTTPFetcher
    let progress: ProgressSink
    let logger: Logger

    package init(
        cache: PackageCache, architecture: String = "amd64", progress: ProgressSink = .none,
        logger: Logger = Logger(label: "kiln.packages")
    ) {
        self.cache = cache
        self.architecture = architecture
        self.progress = progress
        self.logger = logger
        fetcher = HTTPFetcher()
    }

    /// The suite's `InRelease`, its signature checked with `gpgv` against the source's keyring.
    package func release(_ source: ArchiveSource, now: Date = Date()) async throws(PackagesError) -> Release {
        let url = source.distsURL("InRelease")
        let signed = try await fetcher.data(url)
        let text = try await Self.verify(signed, keyring: source.effectiveKeyring, origin: url)
        let digest = SHA256.hash(data: signed).hex
        logger.debug("verified \(url)", metadata: ["sha256": "\(digest)"])
        return try Release(signedText: text, source: source, inReleaseSHA256: digest, now: now)
    }

    /// Checks a clearsigned file with `gpgv --keyring KEYRING` and returns the text that the
    /// signature covers (what gpgv writes with `--output`), so that nothing unsigned is parsed.
    static func verify(_ signed: Data, keyring: String, origin: String) async throws(PackagesError) -> String {
        guard FileManager.default.isReadableFile(atPath: keyring) else {
            throw PackagesError(
                .signature, "cannot read keyring \(keyring) for \(origin)",
                cause: keyring == ArchiveSource.defaultKeyring ? "install debian-archive-keyring" : nil)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-gpgv-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try signed.write(to: URL(fileURLWithPath: "\(dir)/InRelease"))
        } catch {
            throw PackagesError(.cache, "cannot write \(dir)", cause: error.localizedDescription)
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var environment = Subprocess.minimalEnvironment
        // gpgv wants a home for its trustdb lookups; an empty private one keeps the user's out of it.
        environment["GNUPGHOME"] = dir
        let (ended, output): (Subprocess.Termination, String)
        do {
            (ended, output) = try await Subprocess.output(
                ["gpgv", "--keyring", keyring, "--output", "\(dir)/Release", "\(dir)/InRelease"],
                environment: environment)
        } catch {
            throw PackagesError(.signature, "cannot run gpgv for \(origin)", cause: error.description)
        }
        guard ended.succeeded, let text = FileManager.default.contents(atPath: "\(dir)/Release") else {
            let said = output.split(separator: "\n").filter { $0.hasPrefix("gpgv:") }.joined(separator: "; ")
            throw PackagesError(.signature, "\(origin): signature not accepted by gpgv with \(keyring)", cause: said)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// One component's Packages index in the cache, checked against the Release.
    struct IndexFile: Sendable {
        var url: String
        var path: String
        var compressed: Bool
        var empty: Bool
    }

    /// All packages of one suite's components for `architecture`.
    package func packages(_ release: Release) async throws(PackagesError) -> [BinaryPackage] {
        try parse(try await indexFiles(release), of: release)
    }

    /// Fetches each component's Packages index of `release` into the cache.
    func indexFiles(_ release: Release) async throws(PackagesError) -> [IndexFile] {
        var files: [IndexFile] = []
        for component in release.source.components {
            let base = "\(component)/binary-\(architecture)/Packages"
            guard
                let (name, entry) = [".xz", ".gz", ""].lazy.compactMap({ suffix in
                    release.files[base + suffix].map { (base + suffix, $0) }
                }).first
            else {
                throw PackagesError(.format, "\(release.source.label) lists no \(base) index")
            }
            let url = release.source.distsURL(name)
            let path = try await storeIndex(release, name: name, entry: entry)
            files.append(
                IndexFile(url: url, path: path, compressed: !name.hasSuffix("Packages"), empty: entry.size == 0))
        }
        return files
    }

    /// Fetches the index `name` of `release` into the cache: by its hash when the Release offers that
    /// (an archive mid-update then still gives the signed bytes), else, or when the by-hash file is
    /// missing or does not match, by its name.
    func storeIndex(_ release: Release, name: String, entry: Release.FileEntry) async throws(PackagesError) -> String {
        if let byHash = release.byHashURL(name) {
            do {
                return try await cache.store(
                    byHash, kind: .indexes, sha256: entry.sha256, size: entry.size, fetcher: fetcher)
            } catch  where !Task.isCancelled {
                logger.debug("\(byHash): \(error.description); fetching it by name")
            }
        }
        return try await cache.store(
            release.source.distsURL(name), kind: .indexes, sha256: entry.sha256, size: entry.size, fetcher: fetcher)
    }

    /// The packages of fetched indexes, decompressed and parsed as the bytes come: an index is
    /// never whole in memory.
    func parse(_ files: [IndexFile], of release: Release) throws(PackagesError) -> [BinaryPackage] {
        var packages: [BinaryPackage] = []
        for file in files where !file.empty {
            var parser = PackagesIndexParser(source: release.source, origin: file.url)
            try Decompress.chunks(path: file.path, compressed: file.compressed, origin: file.url) {
                (chunk) throws(PackagesError) in try parser.feed(chunk)
            }
            let parsed = try parser.finish()
            // Adopted rather than appended when it is the first: no second copy of 60 000 packages.
            if packages.isEmpty { packages = parsed } else { packages += parsed }
        }
        return packages
    }

    /// One suite's Release and fetched indexes, its failure as a value. (Child tasks call this
    /// rather than catching typed errors in their own closure: release builds of Swift 6.3
    /// corrupted the closure's captures that way.)
    private func suite(_ source: ArchiveSource, now: Date) async -> Result<(Release, [IndexFile]), PackagesError> {
        do {
            let release = try await self.release(source, now: now)
            return .success((release, try await indexFiles(release)))
        } catch {
            return .failure(error)
        }
    }

    /// Fetches and checks every suite, then indexes their packages together.
    package func index(_ sources: [ArchiveSource], now: Date = Date()) async throws(PackagesError) -> PackageIndex {
        progress(.step("index", "reading \(sources.count) archive suite\(sources.count == 1 ? "" : "s")"))
        // Each suite's result goes into its own slot, so that the index (and which suite a
        // package shared by two suites is taken from) follows the sources' order, not arrival.
        let results = await withTaskGroup(of: (Int, Result<(Release, [IndexFile]), PackagesError>).self) { group in
            for (position, source) in sources.enumerated() {
                group.addTask { (position, await self.suite(source, now: now)) }
            }
            var slots = [Result<(Release, [IndexFile]), PackagesError>?](repeating: nil, count: sources.count)
            for await (position, result) in group { slots[position] = result }
            return slots
        }
        // Fetched concurrently, parsed here one suite after the other: parsing on three threads
        // at once spread the index over three malloc arenas (10 MiB more RSS), and each suite's
        // packages go into the index and are let go before the next is parsed.
        var releases: [Release] = []
        var byName: [String: [BinaryPackage]] = [:]
        for (position, result) in results.enumerated() {
            guard let result else {
                throw PackagesError(.network, "\(sources[position].label): not fetched")
            }
            let (release, files) = try result.get()
            releases.append(release)
            PackageIndex.add(try parse(files, of: release), to: &byName, architecture: architecture)
        }
        let index = try PackageIndex(byName: byName, architecture: architecture, releases: releases)
        progress(.info("index", "\(index.count) packages in \(releases.count) suites"))
        return index
    }
}
