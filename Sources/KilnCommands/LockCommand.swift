import Appliance
import ArgumentParser
import Builder
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
            (else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).
            """
    )

    @Argument(help: "The description.")
    var file: String

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("The lockfile (default: FILE.lock beside the description).", valueName: "file"))
    var output: String?

    /// Where the host's apt sources are read from (tests and benchmarks point it elsewhere).
    @Option(name: .customLong("apt-sources"), help: .hidden)
    var aptSources = "/etc/apt"

    /// Also downloads every locked `.deb` (the target's and the builder guest's) into the cache, so
    /// that a later `--offline` build works.
    @Flag(name: .customLong("download"), help: "Also download every locked package into the cache.")
    var download = false

    @Option(help: "Lock for a platform (vmware, virtualbox, hyperv, ec2, gce): as `kiln build --platform`.")
    var platform: String?

    @Option(
        help: "Lock for this architecture whatever the description says: x86_64 or aarch64 (as `kiln build --arch`).")
    var arch: Architecture?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let platform = try BuildCommand.parsePlatform(self.platform)
        let appliance = try ApplianceLoader.loadForCommand(file, arch: arch)
        try BuildCommand.checkArchitecture(appliance, platform: platform, formats: [])
        let console = progress.console()
        let request = try PackageRequest.forCommand(appliance, file: file, aptRoot: aptSources, platform: platform)
        let destination = output ?? "\(file).lock"
        let started = ContinuousClock.now
        let lockfile: Lockfile
        do {
            lockfile = try await Self.lock(request, to: destination, sink: console.sink)
        } catch {
            throw CommandFailure(error.description, hint: Self.hint(for: error))
        }
        if download {
            do {
                let cache = PackageCache(root: KilnCache.root())
                _ = try await cache.fetch(lockfile, progress: console.sink)
                var guestLock = lockfile
                guestLock.packages = lockfile.builder ?? []
                _ = try await cache.fetch(guestLock, progress: console.sink)
            } catch {
                throw CommandFailure(error.description, hint: Self.hint(for: error))
            }
        }
        let bytes = lockfile.packages.reduce(Int64(0)) { $0 + $1.size }
        let elapsed = ContinuousClock.now - started
        console.sink(
            .info("lock", "wrote \(destination): \(lockfile.packages.count) packages, \(bytes / 1_000_000) MB of .deb"))
        console.result(
            Result(
                lockfile: destination, packages: lockfile.packages.count, bytes: bytes,
                milliseconds: elapsed.components.seconds * 1000 + elapsed.components.attoseconds
                    / 1_000_000_000_000_000))
    }

    /// `kiln lock --json`'s result: the lockfile, how many packages it pins and their size.
    struct Result: Encodable {
        let lockfile: String
        let packages: Int
        let bytes: Int64
        let milliseconds: Int64
    }

    /// Reads the archives, resolves, and writes the lockfile.
    static func lock(_ request: PackageRequest, to destination: String, sink: ProgressSink) async throws(PackagesError)
        -> Lockfile
    {
        try await request.lock(to: destination, cache: PackageCache(root: KilnCache.root()), progress: sink)
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

extension PackageRequest {
    /// The request `kiln lock` and `kiln build` make, with the host's apt sources read from `aptRoot`.
    static func forCommand(
        _ appliance: Appliance, file: String, aptRoot: String, platform: Platform? = nil
    ) throws(CommandFailure) -> PackageRequest {
        do {
            return try PackageRequest(
                appliance: appliance,
                hostSources: AptSources.load(
                    listFile: "\(aptRoot)/sources.list", partsDirectory: "\(aptRoot)/sources.list.d",
                    architecture: appliance.hardware.arch.debianName),
                platform: platform)
        } catch {
            throw CommandFailure("\(file): \(error)")
        }
    }
}
