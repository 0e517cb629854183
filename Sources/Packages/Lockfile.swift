import Foundation
import KilnSupport

/// A resolved package set, written as sorted, indented JSON so that it diffs well and two
/// resolutions of the same archive state give the same bytes. Everything a build needs to fetch
/// and verify each `.deb` without reading an index again is in it.
package struct Lockfile: Codable, Equatable, Sendable {
    /// One suite the packages came from, with the signed Release it was read at.
    package struct Archive: Codable, Equatable, Sendable {
        package var uri: String
        package var suite: String
        package var components: [String]
        package var keyring: String
        /// The Release's `Date:`.
        package var date: String
        package var validUntil: String?
        /// SHA-256 of the `InRelease` file the packages were resolved from.
        package var inReleaseSHA256: String
    }

    /// One package to install.
    package struct Package: Codable, Equatable, Sendable {
        package var name: String
        package var version: String
        package var architecture: String
        /// The archive's base URI and suite this package was taken from.
        package var uri: String
        package var suite: String
        /// The path below `uri` (`pool/main/...`).
        package var filename: String
        package var size: Int64
        package var sha256: String

        package init(
            name: String, version: String, architecture: String, uri: String, suite: String, filename: String,
            size: Int64, sha256: String
        ) {
            self.name = name
            self.version = version
            self.architecture = architecture
            self.uri = uri
            self.suite = suite
            self.filename = filename
            self.size = size
            self.sha256 = sha256
        }

        /// Where to download it.
        package var url: String { "\(uri)/\(filename)" }
        /// `name=version`.
        package var label: String { "\(name)=\(version)" }
    }

    /// Bumped when the meaning of a field changes.
    package var format: Int
    package var architecture: String
    package var base: BaseSet
    /// The package names asked for (the description's and kiln's built-in ones), sorted.
    package var requested: [String]
    package var archives: [Archive]
    /// Sorted by name.
    package var packages: [Package]
    /// The packages kiln's builder guest is made from (kernel, busybox, mkfs tools), sorted by
    /// name; absent in lockfiles that only answer installer-driven installs.
    package var builder: [Package]?
    /// The files the description names by URL, sorted by URL; absent when it names none.
    package var files: [RemoteFile]?

    package static let currentFormat = 1

    package init(
        format: Int = Lockfile.currentFormat, architecture: String, base: BaseSet, requested: [String],
        archives: [Archive], packages: [Package]
    ) {
        self.format = format
        self.architecture = architecture
        self.base = base
        self.requested = requested
        self.archives = archives
        self.packages = packages
    }

    /// Records a resolution together with the Release files of its index.
    package init(resolution: Resolution, index: PackageIndex, requested: [String], base: BaseSet) {
        format = Self.currentFormat
        architecture = index.architecture
        self.base = base
        self.requested = Array(Set(requested)).sorted()
        archives = index.releases.map { release in
            Archive(
                uri: release.source.uri, suite: release.source.suite, components: release.source.components,
                keyring: release.source.effectiveKeyring, date: release.date, validUntil: release.validUntil,
                inReleaseSHA256: release.inReleaseSHA256)
        }
        packages = resolution.packages.map { package in
            Package(
                name: package.name, version: package.version.description, architecture: package.architecture,
                uri: package.source.uri, suite: package.source.suite, filename: package.filename, size: package.size,
                sha256: package.sha256)
        }.sorted { $0.name < $1.name }
    }

    /// Whether this lockfile was made for the same request, so that `--locked` may use it.
    package func answers(requested: [String], base: BaseSet, architecture: String, fileURLs: [String] = []) -> Bool {
        self.requested == Array(Set(requested)).sorted() && self.base == base && self.architecture == architecture
            && (files ?? []).map(\.url) == Array(Set(fileURLs)).sorted()
    }

    /// The JSON text, keys sorted, ending with a newline.
    package func encoded() -> String {
        let encoder = KilnJSON.encoder()
        // Encoding plain strings and numbers cannot fail.
        let data = (try? encoder.encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Writes the lockfile atomically.
    package func write(to path: String) throws(PackagesError) {
        do {
            try AtomicOutput.write(encoded(), to: path)
        } catch {
            throw PackagesError(.cache, error.description)
        }
    }

    /// Reads and checks a lockfile.
    package static func read(_ path: String) throws(PackagesError) -> Lockfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PackagesError(.cache, "cannot read lockfile \(path)")
        }
        let lockfile: Lockfile
        do {
            lockfile = try JSONDecoder().decode(Lockfile.self, from: data)
        } catch {
            throw PackagesError(.format, "\(path): not a kiln lockfile", cause: "\(error)")
        }
        guard lockfile.format == currentFormat else {
            throw PackagesError(
                .format, "\(path): lockfile format \(lockfile.format), this kiln reads \(currentFormat)")
        }
        for package in lockfile.packages where package.sha256.count != 64 || package.size < 0 {
            throw PackagesError(.format, "\(path): package \(package.label) has a bad size or SHA-256")
        }
        return lockfile
    }
}

/// The packages kiln adds to every bootable Debian image, beyond the description's own: an init,
/// a kernel for virtual machines, and the boot loaders for the firmware asked for. `kiln lock` and
/// `kiln build` both take them from here, so that a lockfile answers a build's request.
package enum BuiltInPackages {
    /// - Parameter architecture: Debian's name (`amd64`, `arm64`); arm64 boots with UEFI only, so
    ///   `bios` is ignored there.
    package static func debian(bios: Bool, uefi: Bool, architecture: String = "amd64") -> [String] {
        var names = ["systemd-sysv", cloudKernel(architecture: architecture)]
        if architecture == "arm64" {
            names.append("grub-efi-arm64-bin")
        } else {
            if bios { names.append("grub-pc") }
            if uefi { names.append("grub-efi-amd64-bin") }
        }
        // grub-install and update-grub: grub-pc brings them, the -bin packages alone do not.
        if !names.contains("grub-pc") { names.append("grub2-common") }
        return names
    }

    /// Debian's kernel for virtual machines and clouds (virtio, the clouds' devices), smaller than
    /// the generic one.
    package static func cloudKernel(architecture: String) -> String { "linux-image-cloud-\(architecture)" }

    /// Debian's generic kernel, with every driver.
    package static func genericKernel(architecture: String) -> String { "linux-image-\(architecture)" }
}
