import Foundation

/// What kiln's lab mirror needs from an archive: whole Packages indexes as the archive wrote them
/// (every field, so that debootstrap and the installer see the archive's priorities and sections),
/// and single pool files fetched into the cache on demand.
extension ArchiveClient {
    /// Which index of a component.
    package enum IndexKind: Sendable {
        /// `<component>/binary-<arch>/Packages`: the `.deb` files.
        case packages
        /// `<component>/debian-installer/binary-<arch>/Packages`: the installer's `.udeb` files.
        case installer
    }

    /// The decompressed Packages index of one component, checked against the signed Release through
    /// the cache; nil when the Release lists no such index (a suite without installer packages).
    package func indexBytes(_ release: Release, component: String, kind: IndexKind) async throws(PackagesError)
        -> [UInt8]?
    {
        let middle = kind == .packages ? "binary-\(architecture)" : "debian-installer/binary-\(architecture)"
        let base = "\(component)/\(middle)/Packages"
        guard
            let (name, entry) = [".xz", ".gz", ""].lazy.compactMap({ suffix in
                release.files[base + suffix].map { (base + suffix, $0) }
            }).first
        else { return nil }
        let url = release.source.distsURL(name)
        let path = try await storeIndex(release, name: name, entry: entry)
        guard let compressed = FileManager.default.contents(atPath: path) else {
            throw PackagesError(.cache, "cannot read \(path)")
        }
        if entry.size == 0 { return [] }
        return name.hasSuffix("Packages") ? Array(compressed) : try Decompress.stream(compressed, origin: url)
    }

    /// The cached path of one pool file, downloading it first when the cache lacks it; the file
    /// enters the cache only when its size and SHA-256 match.
    package func poolFile(url: String, sha256: String, size: Int64) async throws(PackagesError) -> String {
        try await cache.store(url, kind: .debs, sha256: sha256, size: size, fetcher: fetcher)
    }
}
