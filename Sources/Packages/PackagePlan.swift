import Foundation
import KilnSupport

/// The package half of a build in one call: resolve (or reuse the lockfile), then fetch into the
/// cache. `kiln build` calls this; `kiln lock` is its first half.
public enum PackagePlan {
    /// What a build installs.
    public struct Prepared: Sendable {
        public var lockfile: Lockfile
        /// The verified `.deb` files, in lockfile order.
        public var packages: [LocalPackage]
    }

    /// - Parameters:
    ///   - lockPath: the lockfile to read (with `locked`) or to write (otherwise).
    ///   - locked: use the lockfile as it is and never resolve; it must have been made for the same
    ///     request (names, base set, architecture).
    ///   - offline: read no archive: implies using the lockfile, and only the cache's files.
    public static func prepare(
        sources: [ArchiveSource], requested: [String], base: BaseSet = .minbase, architecture: String = "amd64",
        lockPath: String, locked: Bool, offline: Bool, cache: PackageCache, progress: ProgressSink = .none
    ) async throws(PackagesError) -> Prepared {
        let lockfile: Lockfile
        if locked || offline {
            guard FileManager.default.fileExists(atPath: lockPath) else {
                throw PackagesError(
                    .offline,
                    "\(locked ? "--locked" : "--offline") needs the lockfile \(lockPath); run 'kiln lock' first")
            }
            lockfile = try Lockfile.read(lockPath)
            guard lockfile.answers(requested: requested, base: base, architecture: architecture) else {
                throw PackagesError(
                    .resolution,
                    "\(lockPath) was made for other packages (\(lockfile.requested.joined(separator: " "))); run 'kiln lock' again"
                )
            }
        } else {
            let client = ArchiveClient(cache: cache, architecture: architecture, progress: progress)
            let index = try await client.index(sources)
            progress(.step("resolve", "resolving \(requested.count) packages on the \(base.rawValue) base set"))
            let resolution = try Resolver(index: index).resolve(requested, base: base)
            lockfile = Lockfile(resolution: resolution, index: index, requested: requested, base: base)
            try lockfile.write(to: lockPath)
        }
        let packages = try await cache.fetch(lockfile, offline: offline, progress: progress)
        return Prepared(lockfile: lockfile, packages: packages)
    }
}
