import Crypto
import Foundation
import KilnSupport
import NetBoot
import Packages
import SystemPackage

/// One suite of the lab mirror: what `dists/<codename>/` lists.
package struct MirrorSuite: Sendable {
    /// One component's packages.
    package struct Component: Sendable {
        package var name: String
        /// `.deb` files: `<name>/binary-<arch>/Packages`.
        package var packages: [MirrorPackage]
        /// The installer's `.udeb` files: `<name>/debian-installer/binary-<arch>/Packages`.
        package var installerPackages: [MirrorPackage]

        package init(name: String, packages: [MirrorPackage], installerPackages: [MirrorPackage] = []) {
            self.name = name
            self.packages = packages
            self.installerPackages = installerPackages
        }
    }

    /// The folder under `dists/`, and the Release's `Codename` (the installer reads it to find the udebs).
    package var codename: String
    package var architecture: String
    package var components: [Component]
    /// What the archive offered but could not be trusted and was left out, one sentence each (an
    /// installer index whose bytes differ from the signed Release: the archive is mid-update or
    /// inconsistent). The caller logs them.
    package var leftOut: [String] = []

    package init(codename: String, architecture: String = "amd64", components: [Component]) {
        self.codename = codename
        self.architecture = architecture
        self.components = components
    }

    /// Every package of every component, `.deb` and `.udeb`.
    package var allPackages: [MirrorPackage] { components.flatMap { $0.packages + $0.installerPackages } }

    /// Writes `dists/<codename>/` under `root`: each index plain and gzip'd, then the Release that
    /// lists their sizes and SHA-256, signed by `key` as `InRelease` (clear-signed) and `Release.gpg`
    /// (detached). The folder is made beside the old one and swapped in whole.
    ///
    /// - Parameter date: the Release's `Date`.
    package func publish(under root: String, key: MirrorSigningKey, date: Date = Date()) async throws {
        let dists = "\(root)/dists"
        let final = "\(dists)/\(codename)"
        let scratch = "\(dists)/.\(codename)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        } catch {
            throw NetBootError(.io, "cannot create \(scratch): \(error.localizedDescription)")
        }
        AtomicOutput.registerScratchDirectory(scratch)
        defer {
            try? FileManager.default.removeItem(atPath: scratch)
            AtomicOutput.unregisterScratchDirectory(scratch)
        }
        var listed: [(path: String, size: Int, sha256: String)] = []
        for component in components {
            let indexes = [
                ("\(component.name)/binary-\(architecture)/Packages", component.packages),
                ("\(component.name)/debian-installer/binary-\(architecture)/Packages", component.installerPackages),
            ]
            // choose-mirror checks that the mirror carries the architecture by fetching this file.
            let componentRelease = "\(component.name)/binary-\(architecture)/Release"
            let fields = [
                "Archive: \(codename)", "Origin: kiln", "Label: kiln lab mirror", "Component: \(component.name)",
                "Architecture: \(architecture)",
            ]
            let releaseBytes = Array((fields.joined(separator: "\n") + "\n").utf8)
            try Self.write(releaseBytes, to: "\(scratch)/\(componentRelease)")
            listed.append((componentRelease, releaseBytes.count, SHA256.hash(data: releaseBytes).hex))
            for (path, packages) in indexes {
                let text = Self.indexText(packages)
                try Self.write(text, to: "\(scratch)/\(path)")
                try await Self.gzip("\(scratch)/\(path)")
                for written in [path, path + ".gz"] {
                    guard let data = FileManager.default.contents(atPath: "\(scratch)/\(written)") else {
                        throw NetBootError(.io, "cannot read \(scratch)/\(written)")
                    }
                    listed.append((written, data.count, SHA256.hash(data: data).hex))
                }
            }
        }
        let release = releaseText(files: listed, date: date)
        try Self.write(release, to: "\(scratch)/Release")
        try await key.sign(release, clearSigned: "\(scratch)/InRelease", detached: "\(scratch)/Release.gpg")
        let old = "\(dists)/.\(codename)-old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if FileManager.default.fileExists(atPath: final) { rename(final, old) }
        guard rename(scratch, final) == 0 else {
            throw NetBootError(.io, "cannot move the mirror's index into \(final): \(Errno(rawValue: errno))")
        }
        try? FileManager.default.removeItem(atPath: old)
    }

    /// A Packages index: the stanzas in name order, each followed by a blank line.
    static func indexText(_ packages: [MirrorPackage]) -> [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(packages.reduce(0) { $0 + $1.stanza.count + 2 })
        for package in packages.sorted(by: { ($0.name, $0.filename) < ($1.name, $1.filename) }) {
            text += package.stanza
            text += [UInt8(ascii: "\n"), UInt8(ascii: "\n")]
        }
        return text
    }

    /// The Release fields (Debian's repository format, "Release files").
    func releaseText(files: [(path: String, size: Int, sha256: String)], date: Date) -> [UInt8] {
        let width = files.map { String($0.size).count }.max() ?? 1
        var lines = [
            "Origin: kiln",
            "Label: kiln lab mirror",
            "Suite: \(codename)",
            "Codename: \(codename)",
            "Date: \(Self.rfc2822(date))",
            "Architectures: \(architecture)",
            "Components: \(components.map(\.name).joined(separator: " "))",
            "Description: packages from kiln's cache for lab installs",
            "SHA256:",
        ]
        for file in files {
            let size = String(file.size)
            lines.append(" \(file.sha256) \(String(repeating: " ", count: width - size.count))\(size) \(file.path)")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// "Sat, 22 Nov 2026 01:40:00 UTC", the form Release files use.
    static func rfc2822(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'UTC'"
        return formatter.string(from: date)
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw NetBootError(.io, "cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// `path.gz` beside `path`, without a name or time in the header so that the same index gives the
    /// same bytes.
    static func gzip(_ path: String) async throws {
        do {
            try await Subprocess(["gzip", "-n", "-k", "-f", "-6", path]).run()
        } catch {
            throw NetBootError(.io, "cannot compress \(path)", underlying: error)
        }
    }
}
