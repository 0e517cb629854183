import Appliance
import ArgumentParser
import Foundation
import KilnSupport
import Packages

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Resolve a description's packages into a lockfile.",
        discussion: """
            Reads each archive suite's signed InRelease (checked with gpgv), its Packages index, and \
            resolves the minbase set (Essential, Priority: required, apt), kiln's built-in packages \
            (init, kernel, boot loaders) and the description's packages. Without repos in the \
            description, the archives are the host's apt sources. Indexes are cached in $KILN_CACHE \
            (default ~/.cache/kiln).
            """
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "The lockfile (default: FILE.lock beside the description).")
    var output: String?

    /// Where the host's apt sources are read from (tests and benchmarks point it elsewhere).
    @Option(name: .customLong("apt-sources"), help: .hidden)
    var aptSources = "/etc/apt"

    /// Also downloads every locked `.deb` into the cache, so that a later `--offline` build works.
    @Flag(name: .customLong("download"), help: .hidden)
    var download = false

    /// Also unpacks the locked packages into one tar for the builder guest (see RootfsBundle).
    @Option(name: .customLong("bundle"), help: .hidden)
    var bundle: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let appliance = try ApplianceLoader.loadForCommand(file)
        let console = progress.console()
        let request: PackageRequest
        do {
            request = try PackageRequest(
                appliance: appliance,
                hostSources: AptSources.load(
                    listFile: "\(aptSources)/sources.list", partsDirectory: "\(aptSources)/sources.list.d"))
        } catch {
            throw CommandFailure("\(file): \(error)")
        }
        let destination = output ?? "\(file).lock"
        let started = ContinuousClock.now
        let lockfile: Lockfile
        do {
            lockfile = try await Self.lock(request, to: destination, sink: console.sink)
        } catch {
            throw CommandFailure(error.description, hint: Self.hint(for: error))
        }
        if download || bundle != nil {
            do {
                let local = try await PackageCache(root: PackageCache.defaultRoot()).fetch(
                    lockfile, progress: console.sink)
                if let bundle {
                    let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }
                    let summary = try RootfsBundle.write(local, to: bundle, epoch: epoch, progress: console.sink)
                    console.sink(
                        .info("unpack", "wrote \(bundle): \(summary.entries) entries, \(summary.bytes / 1_000_000) MB"))
                }
            } catch {
                throw CommandFailure(error.description, hint: Self.hint(for: error))
            }
        }
        let bytes = lockfile.packages.reduce(Int64(0)) { $0 + $1.size }
        let elapsed = ContinuousClock.now - started
        console.sink(
            .info("lock", "wrote \(destination): \(lockfile.packages.count) packages, \(bytes / 1_000_000) MB of .deb"))
        console.result([
            "lockfile": destination, "packages": lockfile.packages.count, "bytes": bytes,
            "milliseconds": elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000,
        ])
    }

    /// Reads the archives, resolves, and writes the lockfile.
    static func lock(_ request: PackageRequest, to destination: String, sink: ProgressSink) async throws(PackagesError)
        -> Lockfile
    {
        let client = ArchiveClient(cache: PackageCache(root: PackageCache.defaultRoot()), progress: sink)
        let index = try await client.index(request.sources)
        sink(.step("resolve", "resolving \(request.packages.count) packages on the \(request.base.rawValue) base set"))
        let resolution = try Resolver(index: index).resolve(request.packages, base: request.base)
        let lockfile = Lockfile(resolution: resolution, index: index, requested: request.packages, base: request.base)
        try lockfile.write(to: destination)
        return lockfile
    }

    static func hint(for error: PackagesError) -> String? {
        switch error.code {
        case .network: return "kiln reads archives from the description's repos or the host's apt sources"
        case .signature: return "a repo's `key` names the keyring that signs it"
        case .resolution: return "check the package names in the description"
        default: return nil
        }
    }
}

/// What a Debian-family description asks the archive for: which suites, which packages on which
/// base set. `kiln lock` and `kiln build` make it the same way, so that a lockfile answers a build.
struct PackageRequest {
    var sources: [ArchiveSource]
    var packages: [String]
    var base: BaseSet = .minbase

    init(appliance: Appliance, hostSources: [ArchiveSource]) throws(PackagesError) {
        guard appliance.os.name.family == .debian, let codename = appliance.os.codename else {
            throw PackagesError(
                .sources, "kiln resolves packages for Debian and Ubuntu; this is \(appliance.os.name.rawValue)")
        }
        var sources: [ArchiveSource] = []
        for repo in appliance.repos {
            guard let uri = repo.baseurl else {
                throw PackagesError(.sources, "repo \(repo.name): Debian archives need a baseurl, not a mirrorlist")
            }
            if let key = repo.key, !key.hasPrefix("/") {
                throw PackagesError(.sources, "repo \(repo.name): key must be a local keyring path, not \(key)")
            }
            sources.append(
                ArchiveSource(
                    uri: uri, suite: repo.suite ?? codename,
                    components: repo.components.isEmpty ? ["main"] : repo.components, keyring: repo.key))
        }
        if appliance.defaultRepos {
            sources += AptSources.retarget(hostSources, to: codename)
        }
        guard !sources.isEmpty else {
            throw PackagesError(.sources, "no archive: the description has no repos and the host has no apt sources")
        }
        self.sources = sources
        let firmware = appliance.hardware.firmware
        packages = appliance.packages + BuiltInPackages.debian(bios: firmware != .uefi, uefi: firmware != .bios)
    }
}
