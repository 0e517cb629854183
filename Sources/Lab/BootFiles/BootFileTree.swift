import Appliance
import Crypto
import Foundation
import KilnArchive
import KilnSupport
import NetBoot
import Packages

/// The boot loaders and installers kiln serves, taken from Debian packages: resolved from the archive
/// into a lockfile beside the lab file, fetched into kiln's package cache (verified like a build's), and
/// unpacked once into `<cache>/netboot/<digest>/`, which becomes the boot root.
///
/// Served layout: `pxelinux.0` and `*.c32` (pxelinux, syslinux-common), `grubnetx64.efi`
/// (grub-efi-amd64-signed), `undionly.kpxe`, `ipxe.efi`, `snponly.efi` (ipxe), and
/// `debian-installer/<N>/amd64/{linux,initrd.gz}` (debian-installer-<N>-netboot-amd64); for a lab with
/// arm64 hosts also `grubnetaa64.efi` (grub-efi-arm64-signed, from the arm64 index) and
/// `debian-installer/<N>/arm64/{linux,initrd.gz}` (debian-installer-<N>-netboot-arm64).
package enum BootFileTree {
    /// One file taken out of a package.
    package struct Member: Sendable, Equatable {
        package var package: String
        /// The path inside the package's data.tar.
        package var path: String
        /// Where it is served, relative to the boot root.
        package var served: String
        /// The index the package is resolved from (Debian's name: `amd64`, `arm64`). The installer
        /// packages are `Architecture: all`, so only signed boot loaders need another index.
        package var index: String = "amd64"
        /// The Debian release whose suites hold the package (an installer's); nil for the host's own.
        package var release: Int? = nil
    }

    /// One Debian netboot installer: a major version for one architecture.
    package struct Installer: Sendable, Hashable, Comparable {
        package var version: Int
        package var architecture: BootArchitecture

        package init(version: Int, architecture: BootArchitecture = .x86_64) {
            self.version = version
            self.architecture = architecture
        }

        package static func < (a: Installer, b: Installer) -> Bool {
            (a.version, a.architecture.rawValue) < (b.version, b.architecture.rawValue)
        }
    }

    /// GRUB's signed network image for arm64 UEFI, in the boot tree only when a lab has arm64 hosts.
    static let arm64LoaderMembers = [
        Member(
            package: "grub-efi-arm64-signed", path: "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed",
            served: BootArchitecture.aarch64.grubNetImage, index: BootArchitecture.aarch64.debian)
    ]

    static let loaderMembers: [Member] = {
        var members = [
            Member(package: "pxelinux", path: "usr/lib/PXELINUX/pxelinux.0", served: "pxelinux.0"),
            Member(
                package: "grub-efi-amd64-signed", path: "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
                served: "grubnetx64.efi"),
            Member(package: "ipxe", path: "usr/lib/ipxe/undionly.kpxe", served: "undionly.kpxe"),
            Member(package: "ipxe", path: "boot/ipxe.efi", served: "ipxe.efi"),
            Member(package: "ipxe", path: "usr/lib/ipxe/snponly.efi", served: "snponly.efi"),
        ]
        // pxelinux loads ldlinux.c32 first; the menu and chain modules need the libraries.
        for module in ["ldlinux", "libcom32", "libutil", "menu", "chain", "reboot"] {
            members.append(
                Member(
                    package: "syslinux-common", path: "usr/lib/syslinux/modules/bios/\(module).c32",
                    served: "\(module).c32"))
        }
        return members
    }()

    /// The netboot installer package for a Debian major version and architecture.
    package static func installerPackage(_ installer: Installer) -> String {
        "debian-installer-\(installer.version)-netboot-\(installer.architecture.debian)"
    }

    /// Where kiln serves the Debian installer's kernel and initrd.
    package static func installerPaths(_ installer: Installer) -> (kernel: String, initrd: String) {
        let folder = "debian-installer/\(installer.version)/\(installer.architecture.debian)"
        return ("\(folder)/linux", "\(folder)/initrd.gz")
    }

    static func installerMembers(_ installer: Installer) -> [Member] {
        let arch = installer.architecture.debian
        let base = "usr/lib/debian-installer/images/\(installer.version)/\(arch)/text/debian-installer/\(arch)"
        let served = installerPaths(installer)
        let package = installerPackage(installer)
        return [
            Member(package: package, path: "\(base)/linux", served: served.kernel, release: installer.version),
            Member(package: package, path: "\(base)/initrd.gz", served: served.initrd, release: installer.version),
        ]
    }

    /// Every file the tree holds for these installers: the x86 loaders always, arm64's GRUB when an
    /// installer (or `architectures`) asks for arm64.
    static func members(installers: [Installer], architectures: Set<BootArchitecture>) -> [Member] {
        let arm64 = architectures.contains(.aarch64) || installers.contains { $0.architecture == .aarch64 }
        return loaderMembers + (arm64 ? arm64LoaderMembers : []) + installers.sorted().flatMap(installerMembers)
    }

    /// Every package the tree needs for these installers and host architectures.
    package static func packages(installers: [Installer], architectures: Set<BootArchitecture> = []) -> [String] {
        Array(Set(members(installers: installers, architectures: architectures).map(\.package))).sorted()
    }

    /// Makes sure the boot tree exists and returns its path.
    ///
    /// - Parameters:
    ///   - lockPath: the lockfile naming the exact packages; written when missing or when it does not
    ///     answer `installers` and `architectures` (unless `offline`).
    ///   - installers: the Debian netboot installers the lab's hosts boot.
    ///   - architectures: the lab's host architectures (arm64 adds its GRUB).
    ///   - sources: the archives to resolve from (the host's apt sources).
    ///   - offline: use only the lockfile and the cache.
    /// - Throws: `NetBootError(.configuration)` naming what is missing or failed.
    package static func prepare(
        lockPath: String, installers: [Installer], architectures: Set<BootArchitecture> = [], cache: PackageCache,
        sources: [ArchiveSource], offline: Bool, progress: ProgressSink = .none
    ) async throws -> String {
        let members = members(installers: installers, architectures: architectures)
        let requested = Array(Set(members.map(\.package))).sorted()
        var lockfile: Lockfile?
        if FileManager.default.fileExists(atPath: lockPath) {
            do {
                let existing = try Lockfile.read(lockPath)
                if existing.answers(requested: requested, base: .none, architecture: "amd64") { lockfile = existing }
            } catch {
                throw NetBootError(.configuration, error.description)
            }
        }
        if lockfile == nil {
            guard !offline else {
                throw NetBootError(
                    .configuration,
                    "--offline: \(lockPath) does not lock the boot packages \(requested.joined(separator: ", "))")
            }
            lockfile = try await resolve(members, sources: sources, cache: cache, progress: progress)
            do {
                try lockfile?.write(to: lockPath)
            } catch {
                throw NetBootError(.configuration, error.description)
            }
            progress(.info("boot-files", "wrote \(lockPath)"))
        }
        guard let lockfile else { throw NetBootError(.configuration, "no lockfile for the boot packages") }
        let digest = SHA256.hash(
            data: Data(
                (lockfile.packages.map(\.sha256) + members.map { "\($0.path)>\($0.served)" }).joined(separator: "\n")
                    .utf8)
        ).map { String(format: "%02x", $0) }.joined()
        let tree = "\(cache.root)/netboot/\(digest.prefix(32))"
        if FileManager.default.fileExists(atPath: tree + "/.complete") { return tree }
        let local: [LocalPackage]
        do {
            local = try await cache.fetch(lockfile, offline: offline, progress: progress)
        } catch {
            throw NetBootError(.configuration, error.description)
        }
        progress(.step("boot-files", "unpacking boot loaders and installers into \(tree)"))
        try unpack(members, from: local, into: tree)
        return tree
    }

    /// Where a member's package is looked for: an architecture's index of some suites.
    private struct IndexKey: Hashable {
        var architecture: String
        var sources: [ArchiveSource]

        /// For a stable order: the architecture, then the suites.
        var order: String { ([architecture] + sources.map(\.suite)).joined(separator: " ") }
    }

    /// Finds each member's package candidate in the archives, each from its own architecture's index and
    /// an installer from its own release's suites (the host's apt sources moved to it, as for a build);
    /// the files are used as they are, so no dependencies are followed.
    static func resolve(
        _ members: [Member], sources: [ArchiveSource], cache: PackageCache, progress: ProgressSink
    ) async throws -> Lockfile {
        var chosen: [BinaryPackage] = []
        var releases: [Release] = []
        let byIndex = Dictionary(grouping: members) { member in
            let codename = member.release.flatMap { OperatingSystem.codename(.debian, String($0)) }
            return IndexKey(
                architecture: member.index, sources: codename.map { AptSources.retarget(sources, to: $0) } ?? sources)
        }.mapValues { Set($0.map(\.package)) }
        for (key, names) in byIndex.sorted(by: { $0.key.order < $1.key.order }) {
            let index: PackageIndex
            do {
                index = try await ArchiveClient(cache: cache, architecture: key.architecture, progress: progress).index(
                    key.sources)
            } catch {
                throw NetBootError(.configuration, error.description)
            }
            for name in names.sorted() {
                guard let package = index.candidate(name) else {
                    throw NetBootError(
                        .configuration,
                        "package \(name) is not in the \(key.architecture) indexes of \(key.sources.map(\.label).joined(separator: ", "))"
                    )
                }
                chosen.append(package)
            }
            for release in index.releases
            where !releases.contains(where: { $0.inReleaseSHA256 == release.inReleaseSHA256 }) {
                releases.append(release)
            }
        }
        let names = Array(Set(members.map(\.package))).sorted()
        // Lockfile.Archive has no public memberwise initializer; its Codable form is its public shape.
        let records = releases.map { release in
            ArchiveRecord(
                uri: release.source.uri, suite: release.source.suite, components: release.source.components,
                keyring: release.source.effectiveKeyring, date: release.date, validUntil: release.validUntil,
                inReleaseSHA256: release.inReleaseSHA256)
        }
        let archives: [Lockfile.Archive]
        do {
            archives = try JSONDecoder().decode([Lockfile.Archive].self, from: JSONEncoder().encode(records))
        } catch {
            throw NetBootError(.configuration, "cannot record the archives in the boot lockfile: \(error)")
        }
        let packages = chosen.map { package in
            Lockfile.Package(
                name: package.name, version: package.version.description, architecture: package.architecture,
                uri: package.source.uri, suite: package.source.suite, filename: package.filename, size: package.size,
                sha256: package.sha256)
        }.sorted { $0.name < $1.name }
        return Lockfile(architecture: "amd64", base: .none, requested: names, archives: archives, packages: packages)
    }

    /// Unpacks the members into a temporary folder beside `tree` and renames it into place.
    static func unpack(_ members: [Member], from packages: [LocalPackage], into tree: String) throws {
        let manager = FileManager.default
        let staging = tree + ".tmp-\(getpid())"
        try? manager.removeItem(atPath: staging)
        defer { try? manager.removeItem(atPath: staging) }
        for (name, wanted) in Dictionary(grouping: members, by: \.package) {
            guard let package = packages.first(where: { $0.package.name == name }) else {
                throw NetBootError(.configuration, "package \(name) is not in the boot lockfile")
            }
            var found: Set<String> = []
            do {
                try DebianArchive(path: package.path).forEachDataEntry { entry, reader throws(ArchiveError) in
                    let path = ArchiveEntry.normalize(entry.path)
                    guard entry.kind == .file, let member = wanted.first(where: { $0.path == path }) else { return }
                    let destination = staging + "/" + member.served
                    let data = try reader.readData()
                    do {
                        try manager.createDirectory(
                            atPath: String(destination[..<(destination.lastIndex(of: "/") ?? destination.endIndex)]),
                            withIntermediateDirectories: true)
                        try Data(data).write(to: URL(fileURLWithPath: destination))
                    } catch {
                        throw ArchiveError(destination, "cannot write: \(error.localizedDescription)")
                    }
                    found.insert(path)
                }
            } catch {
                throw NetBootError(.configuration, "\(package.package.label): \(error)")
            }
            let missing = wanted.filter { !found.contains($0.path) }.map(\.path)
            guard missing.isEmpty else {
                throw NetBootError(
                    .configuration, "\(package.package.label) has no \(missing.joined(separator: ", "))")
            }
        }
        guard manager.createFile(atPath: staging + "/.complete", contents: Data()) else {
            throw NetBootError(.io, "cannot write \(staging)/.complete")
        }
        try? manager.removeItem(atPath: tree)
        do {
            try manager.createDirectory(
                atPath: String(tree[..<(tree.lastIndex(of: "/") ?? tree.endIndex)]), withIntermediateDirectories: true)
            try manager.moveItem(atPath: staging, toPath: tree)
        } catch {
            throw NetBootError(.io, "cannot move \(staging) to \(tree): \(error.localizedDescription)")
        }
    }
}

/// The fields of `Lockfile.Archive`, under the same names.
private struct ArchiveRecord: Encodable {
    var uri: String
    var suite: String
    var components: [String]
    var keyring: String
    var date: String
    var validUntil: String?
    var inReleaseSHA256: String
}
