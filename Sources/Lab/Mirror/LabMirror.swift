import Foundation
import Logging
import NetBoot
import Packages

/// A Debian package mirror for the lab, served over kiln's HTTP under `/<prefix>/`: signed
/// `dists/<codename>/` indexes that kiln writes, `pool/` files from kiln's content-addressed package
/// cache, and kiln's public signing key.
///
/// The indexes carry every package the host's apt sources offer for the suite, stanzas as the archive
/// wrote them; a pool file is served from the cache, and one the cache lacks is downloaded into it
/// first (checked against the SHA-256 of the archive's signed index) when an archive client is given.
/// So an installer asks only kiln, whatever it picks, and the installed host can keep using the mirror.
package final class LabMirror: BootFileProvider {
    /// The first path component of every mirror URL ("debian" serves `/debian/dists/...`).
    package let prefix: String
    /// The folder holding the published `dists/`.
    package let root: String
    package let key: MirrorSigningKey
    package let codenames: [String]
    private let pool: [String: MirrorPackage]
    /// Served path below the prefix -> the initrd with kiln's key on disk.
    private let initrds: [String: String]
    private let cache: PackageCache
    private let client: ArchiveClient?
    private let logger: Logger

    /// The key's file names under `/<prefix>/`.
    package static let keyringName = "kiln-lab-mirror.gpg"
    package static let armoredKeyName = "kiln-lab-mirror.asc"

    /// Publishes `suites` under `root` (see `MirrorSuite.publish`) and serves them.
    ///
    /// - Parameters:
    ///   - client: downloads pool files the cache lacks; nil serves only what the cache holds.
    ///   - installers: Debian's netboot initrds by major version, each served with kiln's key added as
    ///     `/<prefix>/installer/<version>/initrd.gz` (see `InstallerOverlay`).
    /// - Throws: `NetBootError` when an index cannot be written or signed.
    package static func publish(
        _ suites: [MirrorSuite], root: String, key: MirrorSigningKey, cache: PackageCache, client: ArchiveClient?,
        installers: [Int: String] = [:], prefix: String = "debian", logger: Logger
    ) async throws -> LabMirror {
        for suite in suites { try await suite.publish(under: root, key: key) }
        return try LabMirror(
            serving: suites, root: root, key: key, cache: cache, client: client, installers: installers,
            prefix: prefix, logger: logger)
    }

    /// Serves suites already published under `root` (see `MirrorSuite.published`).
    package init(
        serving suites: [MirrorSuite], root: String, key: MirrorSigningKey, cache: PackageCache,
        client: ArchiveClient?, installers: [Int: String] = [:], prefix: String = "debian", logger: Logger
    ) throws {
        var pool: [String: MirrorPackage] = [:]
        for suite in suites {
            for package in suite.allPackages {
                if let known = pool[package.filename], known.sha256 != package.sha256 {
                    logger.warning(
                        "mirror: two suites give \(package.filename) different contents; serving the first")
                    continue
                }
                pool[package.filename] = package
            }
        }
        var initrds: [String: String] = [:]
        if !installers.isEmpty {
            let keyring = try Self.read(key.keyringPath)
            for (version, debian) in installers {
                let path = "\(root)/installer/\(version)/initrd.gz"
                try InstallerOverlay.writeInitrd(debian: debian, keyring: keyring, to: path)
                initrds["installer/\(version)/initrd.gz"] = path
            }
        }
        self.prefix = prefix
        self.root = root
        self.key = key
        self.codenames = suites.map(\.codename)
        self.pool = pool
        self.initrds = initrds
        self.cache = cache
        self.client = client
        self.logger = logger
    }

    /// Where a host boots Debian's installer with kiln's key from, relative to the boot root.
    package func installerInitrd(debian version: Int) -> String? {
        initrds["installer/\(version)/initrd.gz"] == nil ? nil : "\(prefix)/installer/\(version)/initrd.gz"
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NetBootError(.io, "cannot read \(path)")
        }
        return Array(data)
    }

    /// How many pool files the indexes list.
    package var packageCount: Int { pool.count }

    /// Over TFTP (pxelinux) only the installer initrds are served, from memory; the rest is HTTP only.
    package func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        guard client.transport == .tftp, path.hasPrefix(prefix + "/"),
            let initrd = initrds[String(path.dropFirst(prefix.count + 1))]
        else { return nil }
        return try Self.read(initrd)
    }

    /// The mirror's file for `path` (under `/<prefix>/`) on disk: an index, the key, or a cached package.
    /// - Throws: `NetBootError(.notFound)` for a mirror path that it does not have.
    package func diskFile(at path: String, for client: BootClient) async throws -> String? {
        guard path.hasPrefix(prefix + "/") else { return nil }
        let rest = String(path.dropFirst(prefix.count + 1))
        if rest == Self.keyringName { return key.keyringPath }
        if rest == Self.armoredKeyName { return key.armoredPath }
        if let initrd = initrds[rest] { return initrd }
        if rest.hasPrefix("dists/") {
            // BootRoot.relativePath has already refused `..` and made the path relative.
            let file = "\(root)/\(rest)"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw NetBootError(.notFound, "mirror has no \(rest)")
            }
            return file
        }
        guard let package = pool[rest] else { throw NetBootError(.notFound, "mirror has no \(rest)") }
        return try await cachedFile(package)
    }

    /// The package's file in the cache, downloaded first when missing and a client is given.
    func cachedFile(_ package: MirrorPackage) async throws -> String {
        let path = cache.path(.debs, sha256: package.sha256)
        if let size = Self.fileSize(path) {
            // The cache checked the digest when the file entered it; a different size now means damage.
            guard size == package.size else {
                throw NetBootError(.io, "cached \(package.filename) at \(path) has \(size) bytes, not \(package.size)")
            }
            return path
        }
        guard let client, let url = package.url else {
            throw NetBootError(.notFound, "\(package.filename) is not in the cache \(cache.root)")
        }
        do {
            let stored = try await client.poolFile(url: url, sha256: package.sha256, size: package.size)
            logger.info("mirror: cached \(package.filename)", metadata: ["bytes": "\(package.size)"])
            return stored
        } catch {
            throw NetBootError(.io, "cannot fetch \(package.filename) into the cache", underlying: error)
        }
    }

    static func fileSize(_ path: String) -> Int64? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber
        else { return nil }
        return size.int64Value
    }
}
