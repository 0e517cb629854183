/// Every package of a set of suites for one architecture, by name and by what they provide.
/// Where several suites carry a name, each version is kept once, highest first; the highest is the
/// candidate, as apt chooses with default pins.
package struct PackageIndex: Sendable {
    package struct Provider: Sendable {
        package var package: BinaryPackage
        /// The version in `Provides: name (= version)`, if given.
        package var version: DebianVersion?
    }

    package let architecture: String
    /// The Release files the packages came from.
    package let releases: [Release]
    /// Versions of each name, highest first.
    package let byName: [String: [BinaryPackage]]
    /// Packages providing each virtual name (every version that provides it).
    package let providers: [String: [Provider]]

    /// - Parameter packages: packages in suite order; those of other architectures are dropped.
    package init(packages: [BinaryPackage], architecture: String, releases: [Release] = []) throws(PackagesError) {
        var byName: [String: [BinaryPackage]] = [:]
        Self.add(packages, to: &byName, architecture: architecture)
        try self.init(byName: byName, architecture: architecture, releases: releases)
    }

    /// Adds one suite's packages to versions by name, in suite order: a version already there
    /// (from an earlier suite) is kept.
    static func add(_ packages: [BinaryPackage], to byName: inout [String: [BinaryPackage]], architecture: String) {
        for package in packages where package.architecture == architecture || package.architecture == "all" {
            if byName[package.name]?.contains(where: { $0.version == package.version }) == true { continue }
            byName[package.name, default: []].append(package)
        }
    }

    /// - Parameter byName: versions of each name in suite order (see `add`).
    init(byName: [String: [BinaryPackage]], architecture: String, releases: [Release]) throws(PackagesError) {
        var byName = byName
        var providers: [String: [Provider]] = [:]
        for name in byName.keys.sorted() {
            guard var versions = byName[name] else { continue }
            // Sorting copies an array the caller still shares: only the few with several versions.
            if versions.count > 1 {
                versions.sort { $0.version > $1.version }
                byName[name] = versions
            }
            for package in versions {
                guard let provides = package.provides else { continue }
                for clause in try Relation.parseField(provides, origin: package.label) {
                    for provided in clause {
                        providers[provided.name, default: []].append(
                            Provider(package: package, version: provided.constraint?.version))
                    }
                }
            }
        }
        self.architecture = architecture
        self.releases = releases
        self.byName = byName
        self.providers = providers
    }

    /// The version apt would install of `name`: the highest.
    package func candidate(_ name: String) -> BinaryPackage? { byName[name]?.first }

    /// How many names the index holds.
    package var count: Int { byName.count }
}
