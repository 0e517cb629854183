import Appliance
import Foundation
import KilnSupport
import Logging
import NetBoot
import Packages

extension LabMirror {
    /// What `kiln serve --config` asks of the mirror.
    package struct Request: Sendable {
        /// Debian codenames the lab's hosts install, each with its descriptions' package names.
        package var suites: [String: [String]]
        /// Debian's netboot initrd by major version (from the boot tree).
        package var installers: [Int: String]
        /// Where the published indexes go (the lab's state folder).
        package var root: String
        /// The host's apt sources; the mirror's upstream.
        package var sources: [ArchiveSource]
        /// Serve only what an earlier run published and the cache holds, reading no archive.
        package var offline: Bool

        package init(
            suites: [String: [String]], installers: [Int: String], root: String, sources: [ArchiveSource],
            offline: Bool
        ) {
            self.suites = suites
            self.installers = installers
            self.root = root
            self.sources = sources
            self.offline = offline
        }

        /// The suites a lab's Debian descriptions install, with their package names.
        package static func suites(of appliances: [Appliance]) -> [String: [String]] {
            var suites: [String: [String]] = [:]
            for appliance in appliances where appliance.os.name.family == .debian {
                guard let codename = appliance.os.codename else { continue }
                suites[codename, default: []] += appliance.packages
            }
            return suites.mapValues { Array(Set($0)).sorted() }
        }
    }

    /// Makes the lab's mirror.
    ///
    /// Online, each suite's index lists everything the host's apt sources offer; the installer's own
    /// packages (every udeb, and the closure of debootstrap's set, the kernel, the boot loaders and
    /// the descriptions' packages) are fetched into the cache now, anything else on its first request.
    /// Offline, the indexes published by an earlier run are cut down to what the cache holds and
    /// signed again, so that the installer and apt only choose what can be served.
    ///
    /// - Throws: `NetBootError` naming the suite or file at fault.
    package static func start(
        _ request: Request, cache: PackageCache, progress: ProgressSink = .none, logger: Logger
    ) async throws -> LabMirror {
        let key = try await MirrorSigningKey.loadOrCreate(in: "\(cache.root)/mirror-key")
        var suites: [MirrorSuite] = []
        let client = request.offline ? nil : ArchiveClient(cache: cache, progress: progress, logger: logger)
        for (codename, requested) in request.suites.sorted(by: { $0.key < $1.key }) {
            if let client {
                progress(.step("mirror", "reading \(codename) for the lab mirror"))
                let suite = try await MirrorSuite.fromArchives(
                    codename: codename, sources: request.sources, client: client)
                for reason in suite.leftOut { logger.warning("mirror: \(reason)") }
                let index: PackageIndex
                do {
                    index = try await client.index(AptSources.retarget(request.sources, to: codename))
                } catch {
                    throw NetBootError(.io, "cannot index \(codename) for the lab mirror", underlying: error)
                }
                let selection = try suite.installerSelection(index: index, requested: requested)
                let fetched = await MirrorSuite.prefetch(selection, client: client, progress: progress)
                for (package, reason) in fetched.failed {
                    logger.warning("mirror: cannot fetch \(package.filename): \(reason)")
                }
                let cached = "\(selection.count - fetched.failed.count) of the installer's \(selection.count) cached"
                logger.info(
                    "mirror: \(codename): \(suite.allPackages.count) packages listed, \(cached)",
                    metadata: ["fetched-bytes": "\(fetched.bytes)"])
                suites.append(suite)
            } else {
                let suite = try MirrorSuite.published(codename: codename, under: request.root).keepingCached(cache)
                logger.info("mirror: \(codename): \(suite.allPackages.count) cached packages listed (offline)")
                suites.append(suite)
            }
        }
        return try await publish(
            suites, root: request.root, key: key, cache: cache, client: client, installers: request.installers,
            logger: logger)
    }

    /// The source a host's preseed names: this mirror at kiln's HTTP address.
    /// - Parameter httpBase: `http://<address>[:port]` as the lab's hosts reach kiln.
    package func aptSource(for appliance: Appliance, httpBase: String) -> ArchiveSource? {
        guard appliance.os.name.family == .debian, let codename = appliance.os.codename, codenames.contains(codename)
        else { return nil }
        return ArchiveSource(
            uri: "\(httpBase)/\(prefix)", suite: codename, components: ["main"], keyring: key.keyringPath)
    }
}
