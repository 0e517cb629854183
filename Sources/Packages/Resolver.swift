/// Which packages a build starts from, before the requested ones.
package enum BaseSet: String, Sendable, Codable {
    /// Nothing beyond the requested packages and their dependencies.
    case none
    /// Every `Essential: yes` package (mmdebstrap's `essential` variant).
    case essential
    /// `Essential: yes`, `Priority: required`, and apt: what mmdebstrap's `minbase` (an alias of
    /// `required`) installs. kiln's default, so that the image can manage its own packages.
    case minbase
}

/// The packages chosen for one installation, by name.
package struct Resolution: Sendable {
    /// Every chosen package, sorted by name.
    package var packages: [BinaryPackage]
    /// The names that were asked for (base set and request), sorted.
    package var roots: [String]
}

/// Computes the dependency closure of a request against an index, the way apt's default solver
/// decides in the common case:
///
/// - each name takes its candidate (highest) version, or the highest that a constraint admits;
/// - `Depends` and `Pre-Depends` are followed; a clause with alternatives is first checked against
///   what is already chosen, else the first alternative that can be installed without conflict
///   is taken (clauses without alternatives are settled first, so that an alternative already
///   pulled in by a hard dependency is preferred over the first one listed);
/// - a virtual name is satisfied through `Provides` (versioned provides for versioned relations),
///   preferring a provider already chosen, then the one with the highest Priority;
/// - `Recommends` and `Suggests` are not followed (as `--no-install-recommends`, and as mmdebstrap);
/// - `Conflicts` and `Breaks` among the chosen packages are errors that name both packages.
package struct Resolver: Sendable {
    package let index: PackageIndex

    package init(index: PackageIndex) { self.index = index }

    /// The names of the base set, sorted.
    package func baseNames(_ base: BaseSet) -> [String] {
        guard base != .none else { return [] }
        var names: [String] = []
        for (name, versions) in index.byName {
            guard let candidate = versions.first else { continue }
            if candidate.essential || (base == .minbase && candidate.priority == "required") { names.append(name) }
        }
        if base == .minbase && index.byName["apt"] != nil { names.append("apt") }
        return names.sorted()
    }

    /// Resolves `requested` (package names, optionally `name=version`) on top of `base`.
    package func resolve(_ requested: [String], base: BaseSet = .minbase) throws(PackagesError) -> Resolution {
        var state = State(index: index)
        var roots: Set<String> = []
        for name in baseNames(base) {
            roots.insert(name)
            try state.choose(name: name, version: nil, reason: "the \(base.rawValue) base set")
        }
        // Every requested name the archive lacks, in one message: for another architecture there are
        // often several (a description written for amd64 built for arm64).
        let missing = requested.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 }
            .filter { index.byName[$0] == nil && index.providers[$0] == nil }
        if !missing.isEmpty {
            let names = missing.count == 1 ? "package named" : "packages named"
            throw PackagesError(
                .resolution,
                "no \(names) \(missing.joined(separator: ", ")) in the archive for \(index.architecture) "
                    + "(asked for by the requested packages)")
        }
        for request in requested {
            let parts = request.split(separator: "=", maxSplits: 1).map(String.init)
            let name = parts[0]
            var version: DebianVersion?
            if parts.count == 2 {
                do {
                    version = try DebianVersion(parts[1])
                } catch {
                    throw PackagesError(.resolution, "bad version in '\(request)'", cause: error.message)
                }
            }
            roots.insert(name)
            try state.choose(name: name, version: version, reason: "the requested packages")
        }
        try state.settle()
        try state.checkConflicts()
        return Resolution(packages: state.chosen.values.sorted { $0.name < $1.name }, roots: roots.sorted())
    }
}

extension Resolver {
    /// The solver's working set.
    struct State {
        let index: PackageIndex
        var chosen: [String: BinaryPackage] = [:]
        /// Virtual names provided by chosen packages.
        var provided: [String: [PackageIndex.Provider]] = [:]
        /// Conflicts and Breaks of the chosen packages, parsed once.
        var negatives: [String: [Relation]] = [:]
        /// Dependency clauses still to look at: those without alternatives first.
        var single: [(clause: [Relation], from: BinaryPackage)] = []
        var multiple: [(clause: [Relation], from: BinaryPackage)] = []

        init(index: PackageIndex) { self.index = index }

        /// Chooses a package asked for by name (a real package, or a virtual one with one provider).
        mutating func choose(name: String, version: DebianVersion?, reason: String) throws(PackagesError) {
            let relation = Relation(name: name, constraint: version.map { (.equal, $0) })
            if isSatisfied(relation) { return }
            if let versions = index.byName[name] {
                guard let package = versions.first(where: { relation.admits($0.version) }) else {
                    let known = versions.map(\.version.description).joined(separator: ", ")
                    throw PackagesError(
                        .resolution, "no version \(version?.description ?? "") of \(name) (there is \(known))")
                }
                try add(package, reason: reason)
                return
            }
            let providers = providerNames(relation)
            if providers.count == 1, let only = candidates(relation).first {
                try add(only, reason: reason)
                return
            }
            if providers.isEmpty {
                throw PackagesError(.resolution, "no package named \(name) in the archive (asked for by \(reason))")
            }
            throw PackagesError(
                .resolution,
                "\(name) is a virtual package provided by \(providers.joined(separator: ", ")): name one of them")
        }

        mutating func add(_ package: BinaryPackage, reason: String) throws(PackagesError) {
            if let existing = chosen[package.name] {
                guard existing.version == package.version else {
                    throw PackagesError(
                        .resolution,
                        "\(reason) needs \(package.label) but \(existing.label) is already chosen")
                }
                return
            }
            chosen[package.name] = package
            negatives[package.name] = Self.negative(package)
            if let provides = package.provides {
                for clause in try Relation.parseField(provides, origin: package.label) {
                    for relation in clause {
                        provided[relation.name, default: []].append(
                            PackageIndex.Provider(package: package, version: relation.constraint?.version))
                    }
                }
            }
            for field in [package.preDepends, package.depends] {
                guard let field else { continue }
                for clause in try Relation.parseField(field, origin: package.label) {
                    if clause.count == 1 {
                        single.append((clause, package))
                    } else {
                        multiple.append((clause, package))
                    }
                }
            }
        }

        /// Works through the pending clauses until none is left.
        mutating func settle() throws(PackagesError) {
            var nextSingle = 0
            var nextMultiple = 0
            while nextSingle < single.count || nextMultiple < multiple.count {
                let item: (clause: [Relation], from: BinaryPackage)
                if nextSingle < single.count {
                    item = single[nextSingle]
                    nextSingle += 1
                } else {
                    item = multiple[nextMultiple]
                    nextMultiple += 1
                }
                if item.clause.contains(where: { isSatisfied($0) }) { continue }
                try satisfy(item.clause, for: item.from)
            }
        }

        mutating func satisfy(_ clause: [Relation], for package: BinaryPackage) throws(PackagesError) {
            var blocked: [String] = []
            for relation in clause {
                for candidate in candidates(relation) {
                    if let conflict = conflict(of: candidate) {
                        blocked.append("\(candidate.label) conflicts with \(conflict)")
                        continue
                    }
                    if let existing = chosen[candidate.name], existing.version != candidate.version {
                        blocked.append("\(existing.label) is already chosen")
                        continue
                    }
                    try add(candidate, reason: package.label)
                    return
                }
            }
            let wanted = clause.map(\.description).joined(separator: " | ")
            var message = "\(package.label) depends on \(wanted), which cannot be satisfied"
            if !blocked.isEmpty { message += " (\(blocked.joined(separator: "; ")))" }
            throw PackagesError(.resolution, message)
        }

        func isSatisfied(_ relation: Relation) -> Bool {
            if let package = chosen[relation.name], relation.admits(package.version) { return true }
            return provided[relation.name]?.contains { relation.admits($0.version) } ?? false
        }

        /// Packages that would satisfy `relation`: versions of the real package, highest first,
        /// then providers, those with a higher Priority first.
        func candidates(_ relation: Relation) -> [BinaryPackage] {
            var result = (index.byName[relation.name] ?? []).filter { relation.admits($0.version) }
            let providers = (index.providers[relation.name] ?? []).filter { relation.admits($0.version) }
            let ranked = providers.sorted { a, b in
                let ra = Self.rank(a.package.priority)
                let rb = Self.rank(b.package.priority)
                if ra != rb { return ra < rb }
                if a.package.name != b.package.name { return a.package.name < b.package.name }
                return a.package.version > b.package.version
            }
            result += ranked.map(\.package)
            return result
        }

        func providerNames(_ relation: Relation) -> [String] {
            var names: [String] = []
            for provider in index.providers[relation.name] ?? [] where relation.admits(provider.version) {
                if !names.contains(provider.package.name) { names.append(provider.package.name) }
            }
            return names.sorted()
        }

        static func rank(_ priority: String?) -> Int {
            switch priority {
            case "required": return 0
            case "important": return 1
            case "standard": return 2
            case "optional": return 3
            default: return 4
            }
        }

        /// The first chosen package that `candidate` conflicts with or breaks, or that conflicts
        /// with or breaks it.
        func conflict(of candidate: BinaryPackage) -> String? {
            for relation in Self.negative(candidate) {
                if let hit = matches(relation, excluding: candidate.name) { return hit }
            }
            for (name, relations) in negatives where name != candidate.name {
                for relation in relations where Self.hits(relation, candidate) {
                    return chosen[name]?.label ?? name
                }
            }
            return nil
        }

        /// A chosen package (or one of its provided names) that `relation` names, other than `name`.
        func matches(_ relation: Relation, excluding name: String) -> String? {
            if let package = chosen[relation.name], package.name != name, relation.admits(package.version) {
                return package.label
            }
            for provider in provided[relation.name] ?? [] where provider.package.name != name {
                // A versioned conflict never matches an unversioned provide (Policy 7.6.2).
                if relation.constraint == nil || relation.admits(provider.version) { return provider.package.label }
            }
            return nil
        }

        static func hits(_ relation: Relation, _ package: BinaryPackage) -> Bool {
            if relation.name == package.name { return relation.admits(package.version) }
            guard let provides = package.provides, provides.contains(relation.name),
                let clauses = try? Relation.parseField(provides)
            else { return false }
            return clauses.joined().contains { provided in
                provided.name == relation.name
                    && (relation.constraint == nil || relation.admits(provided.constraint?.version))
            }
        }

        static func negative(_ package: BinaryPackage) -> [Relation] {
            var relations: [Relation] = []
            for field in [package.conflicts, package.breaks] {
                guard let field, let clauses = try? Relation.parseField(field, origin: package.label) else { continue }
                relations += clauses.joined()
            }
            return relations
        }

        /// Every Conflicts and Breaks among the chosen packages, as one error naming them all.
        func checkConflicts() throws(PackagesError) {
            var problems: [String] = []
            for package in chosen.values.sorted(by: { $0.name < $1.name }) {
                for relation in negatives[package.name] ?? [] {
                    if let hit = matches(relation, excluding: package.name) {
                        problems.append("\(package.label) conflicts with or breaks \(hit) (\(relation))")
                    }
                }
            }
            guard problems.isEmpty else {
                throw PackagesError(
                    .resolution, "the chosen packages cannot be installed together: " + problems.joined(separator: "; ")
                )
            }
        }
    }
}
