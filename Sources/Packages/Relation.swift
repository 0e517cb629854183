/// One package relation: a name, an optional architecture qualifier and an optional version
/// constraint (Debian Policy 7.1), e.g. `libc6 (>= 2.36)` or `python3:any`.
package struct Relation: Sendable, Hashable, CustomStringConvertible {
    /// The five relations of Policy 7.1.
    package enum Operator: String, Sendable, Hashable {
        case earlier = "<<"
        case earlierOrEqual = "<="
        case equal = "="
        case laterOrEqual = ">="
        case later = ">>"

        /// Whether `version` stands in this relation to `reference`.
        package func admits(_ version: DebianVersion, _ reference: DebianVersion) -> Bool {
            let order = DebianVersion.compare(version, reference)
            switch self {
            case .earlier: return order < 0
            case .earlierOrEqual: return order <= 0
            case .equal: return order == 0
            case .laterOrEqual: return order >= 0
            case .later: return order > 0
            }
        }
    }

    package var name: String
    /// `any`, `native` or an architecture name after a colon.
    package var architecture: String?
    package var constraint: (op: Operator, version: DebianVersion)?

    package init(name: String, architecture: String? = nil, constraint: (op: Operator, version: DebianVersion)? = nil) {
        self.name = name
        self.architecture = architecture
        self.constraint = constraint
    }

    /// Whether a package or provided version satisfies the constraint (no constraint: any version).
    /// A provided name without a version never satisfies a versioned relation.
    package func admits(_ version: DebianVersion?) -> Bool {
        guard let constraint else { return true }
        guard let version else { return false }
        return constraint.op.admits(version, constraint.version)
    }

    package var description: String {
        var text = name
        if let architecture { text += ":\(architecture)" }
        if let constraint { text += " (\(constraint.op.rawValue) \(constraint.version))" }
        return text
    }

    package static func == (lhs: Relation, rhs: Relation) -> Bool {
        lhs.name == rhs.name && lhs.architecture == rhs.architecture
            && lhs.constraint?.op == rhs.constraint?.op && lhs.constraint?.version == rhs.constraint?.version
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(architecture)
        hasher.combine(constraint?.op)
    }

    /// Parses a relationship field (`Depends`, `Pre-Depends`, `Conflicts`, `Provides` ...):
    /// comma-separated clauses of `|`-separated alternatives. `[arch]` and `<profile>` restrictions
    /// (source-package fields only) are dropped.
    package static func parseField(_ text: String, origin: String = "") throws(PackagesError) -> [[Relation]] {
        var clauses: [[Relation]] = []
        for clause in text.split(separator: ",") {
            var alternatives: [Relation] = []
            for alternative in clause.split(separator: "|") {
                alternatives.append(try parseOne(alternative, field: text, origin: origin))
            }
            if !alternatives.isEmpty { clauses.append(alternatives) }
        }
        return clauses
    }

    private static func parseOne(_ text: Substring, field: String, origin: String) throws(PackagesError) -> Relation {
        func fail(_ why: String) -> PackagesError {
            PackagesError(
                .format, "\(origin.isEmpty ? "" : "\(origin): ")bad relation '\(text.trimmingBlanks)' (\(why))")
        }
        var rest = stripRestrictions(text)
        var constraint: (op: Operator, version: DebianVersion)?
        if let open = rest.firstIndex(of: "(") {
            guard let close = rest.firstIndex(of: ")"), close > open else { throw fail("unclosed parenthesis") }
            var inner = rest[rest.index(after: open)..<close].drop { $0 == " " || $0 == "\t" }
            var opText = ""
            while let c = inner.first, c == "<" || c == ">" || c == "=" {
                opText.append(c)
                inner.removeFirst()
            }
            let op: Operator
            switch opText {
            case "<<": op = .earlier
            case "<=", "<": op = .earlierOrEqual  // `<` and `>` are obsolete spellings of <= and >=
            case "=": op = .equal
            case ">=", ">": op = .laterOrEqual
            case ">>": op = .later
            default: throw fail("unknown operator '\(opText)'")
            }
            let version: DebianVersion
            do {
                version = try DebianVersion(String(inner))
            } catch {
                throw fail(error.message)
            }
            constraint = (op, version)
            rest = rest[..<open]
        }
        let word = rest.trimmingBlanks
        guard !word.isEmpty, !word.contains(" ") else { throw fail("expected one package name") }
        var name = word
        var architecture: String?
        if let colon = word.firstIndex(of: ":") {
            name = String(word[..<colon])
            architecture = String(word[word.index(after: colon)...])
        }
        return Relation(name: name, architecture: architecture, constraint: constraint)
    }

    private static func stripRestrictions(_ text: Substring) -> Substring {
        guard text.contains("[") || text.contains("<") else { return text }
        var result = ""
        var depth = 0
        var inParens = false
        for c in text {
            if c == "(" { inParens = true }
            if c == ")" { inParens = false }
            if !inParens && (c == "[" || c == "<") { depth += 1 }
            if depth == 0 { result.append(c) }
            if !inParens && (c == "]" || c == ">") { depth = max(0, depth - 1) }
        }
        return Substring(result)
    }
}
