import Appliance
import BuildVM
import KilnSupport
import Packages

/// What a Debian-family description asks the archive for: which suites, which packages on which
/// base set, and the builder guest's own packages. `kiln lock` and `kiln build` make it the same
/// way, so that a lockfile answers a build.
package struct PackageRequest: Sendable {
    package var sources: [ArchiveSource]
    /// The target's packages: the description's, and what kiln adds for a bootable image.
    package var packages: [String]
    package var base: BaseSet = .minbase
    /// Debian's name for the target's architecture (`amd64`, `arm64`): the archive's indexes are
    /// read for it, and the builder guest is of the same architecture.
    package var architecture: String
    /// What the builder guest is assembled from.
    package var builderPackages: [String]
    /// The files the description names by URL: pinned in the lockfile like packages.
    package var fileURLs: [String] = []

    /// - Parameter platform: `kiln build --platform`: adds the platform's guest packages (and the
    ///   generic kernel for VMware and VirtualBox).
    package init(appliance: Appliance, hostSources: [ArchiveSource], platform: Platform? = nil) throws(PackagesError) {
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
            if appliance.os.name == .ubuntu {
                // Retargeting a Debian host's mirror to an Ubuntu suite would find nothing there.
                sources += hostSources.filter { $0.suite == codename || $0.suite.hasPrefix("\(codename)-") }
            } else {
                sources += AptSources.retarget(hostSources, to: codename)
            }
        }
        guard !sources.isEmpty else {
            let what = appliance.os.name == .ubuntu ? "no \(codename) suite in its apt sources" : "no apt sources"
            throw PackagesError(.sources, "no archive: the description has no repos and the host has \(what)")
        }
        self.sources = sources
        architecture = appliance.hardware.arch.debianName
        var image = Self.imagePackages(for: appliance)
        if let platform {
            image = PlatformPackages.adjust(image, platform: platform.rawValue, architecture: architecture)
        }
        packages = Array(Set(appliance.packages + image)).sorted()
        builderPackages =
            BuilderGuestRecipe.debianPackages(for: appliance.hardware.arch)
            + FilesystemTools.needed(by: appliance.hardware.partitions).builderPackages
        fileURLs = appliance.files.flatMap(\.sources).compactMap {
            if case .url(let url) = $0 { url } else { nil }
        }
    }

    /// What kiln adds to a Debian image beyond the description's own packages: an init, a kernel,
    /// the boot loaders for the firmware, merged-/usr, ifupdown with a DHCP client for the network,
    /// and what the description's settings need (sudo, locales, xfsprogs, btrfs-progs).
    static func imagePackages(for appliance: Appliance) -> [String] {
        let firmware = appliance.hardware.firmware
        var names = BuiltInPackages.debian(
            bios: firmware != .uefi, uefi: firmware != .bios, architecture: appliance.hardware.arch.debianName)
        names += ["usr-is-merged", "ifupdown", "isc-dhcp-client"]
        names += FilesystemTools.needed(by: appliance.hardware.partitions).targetPackages
        // Debian 13 moved systemd's crypttab generator and unlocker into their own package: without it
        // only the initramfs unlocks anything, and an encrypted /srv waits for its device until the
        // boot drops to the emergency shell.
        let unlockedLater = appliance.hardware.partitions.contains {
            $0.passphrase != nil && !DiskLayout.unlockedByInitramfs.contains($0.mountPoint)
        }
        if unlockedLater && appliance.os.name == .debian && (appliance.os.debianMajor ?? .max) >= 13 {
            names.append("systemd-cryptsetup")
        }
        if appliance.users.contains(where: \.sudo) { names.append("sudo") }
        if !["C", "C.UTF-8", "POSIX"].contains(appliance.os.locale) { names.append("locales") }
        return names
    }

    /// Reads the archives, resolves the target's and the builder guest's packages, and writes the
    /// lockfile.
    package func lock(to destination: String, cache: PackageCache, progress: ProgressSink) async throws(PackagesError)
        -> Lockfile
    {
        let lockfile = try await PackagePlan.resolve(
            sources: sources, requested: packages, builderRequested: builderPackages, fileURLs: fileURLs, base: base,
            architecture: architecture, cache: cache, progress: progress)
        try lockfile.write(to: destination)
        return lockfile
    }

    /// Locks (or, with `locked` or `offline`, reads `lockPath`) and fetches everything a build needs.
    package func prepare(lockPath: String, locked: Bool, offline: Bool, cache: PackageCache, progress: ProgressSink)
        async throws(PackagesError) -> PackagePlan.Prepared
    {
        try await PackagePlan.prepare(
            sources: sources, requested: packages, builderRequested: builderPackages, fileURLs: fileURLs, base: base,
            architecture: architecture, lockPath: lockPath, locked: locked, offline: offline, cache: cache,
            progress: progress)
    }
}
