import Appliance
import Foundation
import KilnSupport
import Logging
import Packages

extension LabMirror {
    /// The mirror for a lab file and what the lab server needs from it: the preseed's mirror and the
    /// installer initrd with kiln's key for every Debian host without an installer of its own, and the
    /// mirror's files.
    ///
    /// - Parameters:
    ///   - tree: the boot tree, which holds Debian's netboot installers (`BootFileTree`).
    ///   - sources: the host's apt sources, the mirror's upstream.
    ///   - offline: serve what an earlier run published and the cache holds.
    package static func forLab(
        _ lab: LabConfig, tree: String, sources: [ArchiveSource], offline: Bool, cache: PackageCache,
        progress: ProgressSink = .none, logger: Logger
    ) async throws -> (mirror: LabMirror?, services: LabServices) {
        var appliances: [Appliance] = []
        var versions: Set<Int> = []
        // The mirror is amd64's (the suites' indexes, the installer's udebs and its initrd with kiln's key).
        for host in lab.hosts where host.installer == nil && host.install == .installer && host.arch == .x86_64 {
            guard let description = host.description, let appliance = try? ApplianceLoader().load(description),
                appliance.os.name == .debian
            else {
                continue
            }
            appliances.append(appliance)
            if let version = appliance.os.majorVersion { versions.insert(version) }
        }
        let suites = Request.suites(of: appliances)
        guard !suites.isEmpty else { return (nil, LabServices()) }
        var installers: [Int: String] = [:]
        for version in versions {
            let initrd = "\(tree)/\(BootFileTree.installerPaths(.init(version: version)).initrd)"
            if FileManager.default.fileExists(atPath: initrd) { installers[version] = initrd }
        }
        let root = "\(lab.stateDirectory)/mirror"
        if offline && !FileManager.default.fileExists(atPath: "\(root)/dists") {
            logger.warning(
                "mirror: nothing published in \(root) (run 'kiln serve --prepare'); hosts use their own mirrors")
            return (nil, LabServices())
        }
        let mirror = try await start(
            Request(suites: suites, installers: installers, root: root, sources: sources, offline: offline),
            cache: cache, progress: progress, logger: logger)
        let httpBase = lab.httpBase
        let services = LabServices(
            mirror: { appliance in httpBase.flatMap { mirror.aptSource(for: appliance, httpBase: $0) } },
            installer: { host, appliance in
                guard host.installer == nil, host.arch == .x86_64, appliance.os.name == .debian,
                    let version = appliance.os.majorVersion, let initrd = mirror.installerInitrd(debian: version)
                else { return nil }
                return (BootFileTree.installerPaths(.init(version: version)).kernel, initrd)
            })
        return (mirror, services)
    }
}
