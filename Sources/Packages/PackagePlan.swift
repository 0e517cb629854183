import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The package half of a build in one call: resolve (or reuse the lockfile), then fetch into the
/// cache. `kiln build` calls this; `kiln lock` is its first half.
package enum PackagePlan {
    /// What a build installs.
    package struct Prepared: Sendable {
        package var lockfile: Lockfile
        /// The verified `.deb` files, in lockfile order.
        package var packages: [LocalPackage]
        /// The builder guest's verified `.deb` files (empty when none were asked for).
        package var builderPackages: [LocalPackage]
        /// The cached copy of each file named by URL.
        package var files: [String: String] = [:]
    }

    /// Reads the archives and resolves `requested` on `base`, and `builderRequested` (the builder
    /// guest's packages) on nothing, from the same index, into one lockfile; downloads `fileURLs`
    /// and pins them in it too.
    package static func resolve(
        sources: [ArchiveSource], requested: [String], builderRequested: [String] = [], fileURLs: [String] = [],
        base: BaseSet = .minbase, architecture: String = "amd64", cache: PackageCache, progress: ProgressSink = .none
    ) async throws(PackagesError) -> Lockfile {
        let client = ArchiveClient(cache: cache, architecture: architecture, progress: progress)
        let index = try await client.index(sources)
        progress(.step("resolve", "resolving \(requested.count) packages on the \(base.rawValue) base set"))
        let resolver = Resolver(index: index)
        var lockfile = Lockfile(
            resolution: try resolver.resolve(requested, base: base), index: index, requested: requested, base: base)
        if !builderRequested.isEmpty {
            let guest = try resolver.resolve(builderRequested, base: .none)
            lockfile.builder =
                Lockfile(resolution: guest, index: index, requested: builderRequested, base: .none).packages
        }
        if !fileURLs.isEmpty { lockfile.files = try await cache.pin(fileURLs, progress: progress) }
        return lockfile
    }

    /// - Parameters:
    ///   - lockPath: the lockfile to read (with `locked`) or to write (otherwise).
    ///   - locked: use the lockfile as it is and never resolve; it must have been made for the same
    ///     request (names, base set, architecture).
    ///   - offline: read no archive: implies using the lockfile, and only the cache's files.
    package static func prepare(
        sources: [ArchiveSource], requested: [String], builderRequested: [String] = [], fileURLs: [String] = [],
        base: BaseSet = .minbase, architecture: String = "amd64", lockPath: String, locked: Bool, offline: Bool,
        cache: PackageCache,
        progress: ProgressSink = .none
    ) async throws(PackagesError) -> Prepared {
        let lockfile: Lockfile
        if locked || offline {
            guard FileManager.default.fileExists(atPath: lockPath) else {
                throw PackagesError(
                    .offline,
                    "\(locked ? "--locked" : "--offline") needs the lockfile \(lockPath); run 'kiln lock' first")
            }
            lockfile = try Lockfile.read(lockPath)
            guard lockfile.answers(requested: requested, base: base, architecture: architecture, fileURLs: fileURLs),
                builderRequested.isEmpty || lockfile.builder != nil
            else {
                throw PackagesError(
                    .resolution,
                    "\(lockPath) was made for other packages or files (\(lockfile.requested.joined(separator: " "))); run 'kiln lock' again"
                )
            }
        } else {
            lockfile = try await resolve(
                sources: sources, requested: requested, builderRequested: builderRequested, fileURLs: fileURLs,
                base: base, architecture: architecture, cache: cache, progress: progress)
            try lockfile.write(to: lockPath)
            // The index (tens of MB in 60 000 small blocks, freed now) stays in the process's
            // heap unless handed back: the builder guest's assembly would come on top of it.
            Self.returnFreedMemory()
        }
        let packages = try await cache.fetch(lockfile, offline: offline, progress: progress)
        var guestLock = lockfile
        guestLock.packages = lockfile.builder ?? []
        let builderPackages = try await cache.fetch(guestLock, offline: offline, progress: progress)
        let files = try await cache.fetch(lockfile.files ?? [], offline: offline)
        // URLSession queues received chunks for the delegate faster than it writes them (tens of
        // MB on a loaded machine): freed now, they go back before the build's next phases.
        Self.returnFreedMemory()
        return Prepared(lockfile: lockfile, packages: packages, builderPackages: builderPackages, files: files)
    }

    /// Gives the heap's free pages back to the system (glibc keeps them for reuse by the thread
    /// arena that freed them, which later work on other threads may never use).
    static func returnFreedMemory() {
        #if canImport(Glibc)
            // malloc_trim(3) is glibc's own (malloc.h, which the Glibc module leaves out): looked
            // up at run time, so that another C library simply skips this.
            typealias Trim = @convention(c) (Int) -> Int32
            if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
                _ = unsafeBitCast(symbol, to: Trim.self)(0)
            }
        #endif
    }
}
