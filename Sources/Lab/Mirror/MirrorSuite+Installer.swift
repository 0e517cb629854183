import Foundation
import KilnSupport
import NetBoot
import Packages

extension MirrorSuite {
    /// Packages debian-installer puts on a host beyond debootstrap's set (Priority required and
    /// important): the kernel, the boot loaders, and what its components add with apt-install
    /// (console-setup, locales, tasksel, ifupdown and a DHCP client, os-prober, ...).
    package static let installerExtras = [
        "linux-image-amd64", "os-prober", "initramfs-tools", "busybox",
        "locales", "console-setup", "keyboard-configuration", "tasksel", "tasksel-data", "ifupdown",
        "isc-dhcp-client", "discover", "laptop-detect", "eject", "pciutils", "usbutils", "installation-report",
        "popularity-contest", "ca-certificates", "apt-utils",
    ]

    /// The boot loaders, one set per firmware: they conflict with each other, so each is resolved apart.
    package static let bootLoaderSets = [["grub-pc"], ["grub-efi-amd64", "efibootmgr"]]

    /// The files an unattended install of `requested` (a description's packages) takes from the
    /// mirror: every installer package (udeb), and the dependency closure, resolved from `index` (the
    /// same archives), of debootstrap's set, `installerExtras`, `requested` and each boot loader set.
    ///
    /// - Throws: `NetBootError(.configuration)` when the packages cannot be resolved together.
    package func installerSelection(index: PackageIndex, requested: [String]) throws -> [MirrorPackage] {
        // A description may name packages of its own repositories; those are not the mirror's to carry.
        var names = Set(requested.filter { index.byName[$0] != nil || !index.providers[$0, default: []].isEmpty })
        for (name, versions) in index.byName {
            guard let candidate = versions.first else { continue }
            if candidate.priority == "required" || candidate.priority == "important" { names.insert(name) }
        }
        for extra in Self.installerExtras where index.byName[extra] != nil { names.insert(extra) }
        var filenames: Set<String> = []
        for loaders in Self.bootLoaderSets {
            do {
                let resolution = try Resolver(index: index).resolve((names.union(loaders)).sorted(), base: .minbase)
                filenames.formUnion(resolution.packages.map(\.filename))
            } catch {
                throw NetBootError(
                    .configuration, "cannot resolve the installer's packages for \(codename)", underlying: error)
            }
        }
        let chosen = components.flatMap(\.packages).filter { filenames.contains($0.filename) }
        return chosen + components.flatMap(\.installerPackages)
    }

    /// What `prefetch` did.
    package struct Prefetched: Sendable {
        package var bytes: Int64
        /// The packages that could not be fetched, with why.
        package var failed: [(package: MirrorPackage, reason: String)]
    }

    /// Downloads `packages` into the cache, at most `concurrency` at a time; each is checked against
    /// its stanza's size and SHA-256. A package that cannot be fetched is reported, not fatal: an
    /// offline mirror then leaves it out of its index.
    package static func prefetch(
        _ packages: [MirrorPackage], client: ArchiveClient, concurrency: Int = 8, progress: ProgressSink = .none
    ) async -> Prefetched {
        let missing = packages.filter { !client.cache.contains(.debs, sha256: $0.sha256) && $0.url != nil }
        guard !missing.isEmpty else { return Prefetched(bytes: 0, failed: []) }
        let total = missing.reduce(Int64(0)) { $0 + $1.size }
        progress(.step("mirror", "fetching \(missing.count) packages for the lab mirror (\(total / 1_000_000) MB)"))
        var result = Prefetched(bytes: 0, failed: [])
        await withTaskGroup(of: (MirrorPackage, String?).self) { group in
            var queue = missing[...]
            func startNext() {
                guard let package = queue.popFirst(), let url = package.url else { return }
                group.addTask {
                    do {
                        _ = try await client.poolFile(url: url, sha256: package.sha256, size: package.size)
                        return (package, nil)
                    } catch {
                        return (package, "\(error)")
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            for await (package, failure) in group {
                if let failure {
                    result.failed.append((package, failure))
                } else {
                    result.bytes += package.size
                }
                startNext()
            }
        }
        return result
    }

    /// The suite with only the packages whose files the cache holds: what an offline lab can serve,
    /// listed so that the installer and apt choose only among them.
    package func keepingCached(_ cache: PackageCache) -> MirrorSuite {
        var copy = self
        copy.components = components.map { component in
            Component(
                name: component.name, packages: component.packages.filter { cache.contains(.debs, sha256: $0.sha256) },
                installerPackages: component.installerPackages.filter { cache.contains(.debs, sha256: $0.sha256) })
        }
        return copy
    }

    /// A suite published earlier under `root` (`dists/<codename>/`), read back from its own indexes:
    /// how an offline lab serves what `--prepare` published.
    /// - Throws: `NetBootError(.notFound)` when nothing was published for `codename`.
    package static func published(codename: String, under root: String, architecture: String = "amd64") throws
        -> MirrorSuite
    {
        let base = "\(root)/dists/\(codename)"
        guard let release = FileManager.default.contents(atPath: "\(base)/Release") else {
            throw NetBootError(
                .notFound, "no lab mirror was published for \(codename) in \(root); run 'kiln serve --prepare'")
        }
        let names =
            String(decoding: release, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("Components:") }?.split(separator: " ").dropFirst().map(String.init) ?? []
        var components: [Component] = []
        for name in names {
            func read(_ path: String) throws -> [MirrorPackage] {
                guard let data = FileManager.default.contents(atPath: "\(base)/\(path)") else { return [] }
                return try MirrorPackage.parseIndex(Array(data), baseURL: nil, origin: "\(base)/\(path)")
            }
            components.append(
                Component(
                    name: name, packages: try read("\(name)/binary-\(architecture)/Packages"),
                    installerPackages: try read("\(name)/debian-installer/binary-\(architecture)/Packages")))
        }
        return MirrorSuite(codename: codename, architecture: architecture, components: components)
    }
}
