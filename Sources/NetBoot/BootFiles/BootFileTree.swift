import Crypto
import Foundation
import KilnArchive
import KilnSupport
import Packages

/// The boot loaders and installers kiln serves, taken from Debian packages: resolved from the archive
/// into a lockfile beside the lab file, fetched into kiln's package cache (verified like a build's), and
/// unpacked once into `<cache>/netboot/<digest>/`, which becomes the boot root.
///
/// Served layout: `pxelinux.0` and `*.c32` (pxelinux, syslinux-common), `grubnetx64.efi`
/// (grub-efi-amd64-signed), `undionly.kpxe`, `ipxe.efi`, `snponly.efi` (ipxe), and
/// `debian-installer/<N>/amd64/{linux,initrd.gz}` (debian-installer-<N>-netboot-amd64).
public enum BootFileTree {
    /// One file taken out of a package.
    public struct Member: Sendable, Equatable {
        public var package: String
        /// The path inside the package's data.tar.
        public var path: String
        /// Where it is served, relative to the boot root.
        public var served: String
    }

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

    /// The netboot installer package for a Debian major version.
    public static func installerPackage(debian version: Int) -> String { "debian-installer-\(version)-netboot-amd64" }

    /// Where kiln serves the Debian installer's kernel and initrd for a major version.
    public static func installerPaths(debian version: Int) -> (kernel: String, initrd: String) {
        ("debian-installer/\(version)/amd64/linux", "debian-installer/\(version)/amd64/initrd.gz")
    }

    static func installerMembers(debian version: Int) -> [Member] {
        let base = "usr/lib/debian-installer/images/\(version)/amd64/text/debian-installer/amd64"
        let served = installerPaths(debian: version)
        return [
            Member(package: installerPackage(debian: version), path: "\(base)/linux", served: served.kernel),
            Member(package: installerPackage(debian: version), path: "\(base)/initrd.gz", served: served.initrd),
        ]
    }

    /// Every package the tree needs for these Debian installer versions.
    public static func packages(debianVersions: [Int]) -> [String] {
        Array(Set(loaderMembers.map(\.package) + debianVersions.map(installerPackage(debian:)))).sorted()
    }

    /// Makes sure the boot tree exists and returns its path.
    ///
    /// - Parameters:
    ///   - lockPath: the lockfile naming the exact packages; written when missing or when it does not
    ///     answer `debianVersions` (unless `offline`).
    ///   - sources: the archives to resolve from (the host's apt sources).
    ///   - offline: use only the lockfile and the cache.
    /// - Throws: `NetBootError(.configuration)` naming what is missing or failed.
    public static func prepare(
        lockPath: String, debianVersions: [Int], cache: PackageCache, sources: [ArchiveSource], offline: Bool,
        progress: ProgressSink = .none
    ) async throws -> String {
        let requested = packages(debianVersions: debianVersions)
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
            lockfile = try await resolve(requested, sources: sources, cache: cache, progress: progress)
            do {
                try lockfile?.write(to: lockPath)
            } catch {
                throw NetBootError(.configuration, error.description)
            }
            progress(.info("boot-files", "wrote \(lockPath)"))
        }
        guard let lockfile else { throw NetBootError(.configuration, "no lockfile for the boot packages") }
        let members = loaderMembers + debianVersions.flatMap(installerMembers(debian:))
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

    /// Finds each requested package's candidate in the archives (the files are used as they are, so no
    /// dependencies are followed).
    static func resolve(
        _ names: [String], sources: [ArchiveSource], cache: PackageCache, progress: ProgressSink
    ) async throws -> Lockfile {
        let index: PackageIndex
        do {
            index = try await ArchiveClient(cache: cache, progress: progress).index(sources)
        } catch {
            throw NetBootError(.configuration, error.description)
        }
        var chosen: [BinaryPackage] = []
        for name in names {
            guard let package = index.candidate(name) else {
                throw NetBootError(
                    .configuration,
                    "package \(name) is not in the archives (\(sources.map(\.label).joined(separator: ", ")))")
            }
            chosen.append(package)
        }
        // Lockfile.Archive has no public memberwise initializer; its Codable form is its public shape.
        let records = index.releases.map { release in
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
