/// One binary package as a Packages index describes it. Relationship fields are kept as text and
/// parsed when the resolver reaches the package: an index holds 60 000 stanzas and a build needs
/// a few hundred.
package struct BinaryPackage: Sendable {
    /// The fields, shared by every copy: the index, its providers and the resolver all hold the
    /// same 60 000 packages, and a copy is one reference rather than 300 bytes of strings.
    private final class Fields: @unchecked Sendable {
        // @unchecked: a shared instance is never changed; a setter first gives its copy its own.
        var name: String
        var version: DebianVersion
        var architecture: String
        var multiArch: String?
        var priority: String?
        var essential: Bool
        var depends: String?
        var preDepends: String?
        var provides: String?
        var conflicts: String?
        var breaks: String?
        var filename: String
        var size: Int64
        var sha256: Digest
        var source: SharedSource

        init(
            name: String, version: DebianVersion, architecture: String, multiArch: String?, priority: String?,
            essential: Bool, depends: String?, preDepends: String?, provides: String?, conflicts: String?,
            breaks: String?, filename: String, size: Int64, sha256: Digest, source: SharedSource
        ) {
            self.name = name
            self.version = version
            self.architecture = architecture
            self.multiArch = multiArch
            self.priority = priority
            self.essential = essential
            self.depends = depends
            self.preDepends = preDepends
            self.provides = provides
            self.conflicts = conflicts
            self.breaks = breaks
            self.filename = filename
            self.size = size
            self.sha256 = sha256
            self.source = source
        }

        func copy() -> Fields {
            Fields(
                name: name, version: version, architecture: architecture, multiArch: multiArch, priority: priority,
                essential: essential, depends: depends, preDepends: preDepends, provides: provides,
                conflicts: conflicts, breaks: breaks, filename: filename, size: size, sha256: sha256, source: source)
        }
    }

    private var fields: Fields

    /// The fields, made this copy's own before a change.
    private mutating func unique() -> Fields {
        if !isKnownUniquelyReferenced(&fields) { fields = fields.copy() }
        return fields
    }

    package var name: String {
        get { fields.name }
        set { unique().name = newValue }
    }
    package var version: DebianVersion {
        get { fields.version }
        set { unique().version = newValue }
    }
    package var architecture: String {
        get { fields.architecture }
        set { unique().architecture = newValue }
    }
    package var multiArch: String? {
        get { fields.multiArch }
        set { unique().multiArch = newValue }
    }
    package var priority: String? {
        get { fields.priority }
        set { unique().priority = newValue }
    }
    package var essential: Bool {
        get { fields.essential }
        set { unique().essential = newValue }
    }
    package var depends: String? {
        get { fields.depends }
        set { unique().depends = newValue }
    }
    package var preDepends: String? {
        get { fields.preDepends }
        set { unique().preDepends = newValue }
    }
    package var provides: String? {
        get { fields.provides }
        set { unique().provides = newValue }
    }
    package var conflicts: String? {
        get { fields.conflicts }
        set { unique().conflicts = newValue }
    }
    package var breaks: String? {
        get { fields.breaks }
        set { unique().breaks = newValue }
    }
    /// The path below the archive's base URI (`pool/main/...`).
    package var filename: String {
        get { fields.filename }
        set { unique().filename = newValue }
    }
    package var size: Int64 {
        get { fields.size }
        set { unique().size = newValue }
    }
    package var sha256: String {
        get { fields.sha256.text }
        set { unique().sha256 = Digest(newValue) }
    }
    /// The suite this stanza came from.
    package var source: ArchiveSource {
        get { fields.source.value }
        set { unique().source = SharedSource(newValue) }
    }

    package init(
        name: String, version: DebianVersion, architecture: String, multiArch: String? = nil, priority: String? = nil,
        essential: Bool = false, depends: String? = nil, preDepends: String? = nil, provides: String? = nil,
        conflicts: String? = nil, breaks: String? = nil, filename: String, size: Int64, sha256: String,
        source: ArchiveSource
    ) {
        fields = Fields(
            name: name, version: version, architecture: architecture, multiArch: multiArch, priority: priority,
            essential: essential, depends: depends, preDepends: preDepends, provides: provides, conflicts: conflicts,
            breaks: breaks, filename: filename, size: size, sha256: Digest(sha256), source: SharedSource(source))
    }

    /// A package of an index: its suite shared with the index's other packages, its digest as bytes.
    init(
        name: String, version: DebianVersion, architecture: String, multiArch: String?, priority: String?,
        essential: Bool, depends: String?, preDepends: String?, provides: String?, conflicts: String?, breaks: String?,
        filename: String, size: Int64, sha256: Digest, source: SharedSource
    ) {
        fields = Fields(
            name: name, version: version, architecture: architecture, multiArch: multiArch, priority: priority,
            essential: essential, depends: depends, preDepends: preDepends, provides: provides, conflicts: conflicts,
            breaks: breaks, filename: filename, size: size, sha256: sha256, source: source)
    }

    /// `name=version`, how messages name a package.
    package var label: String { "\(name)=\(version)" }

    /// The file's URL in its archive.
    package var url: String { source.poolURL(filename) }

    /// Parses all packages of a decompressed Packages index.
    package static func parseIndex(_ bytes: [UInt8], source: ArchiveSource, origin: String) throws(PackagesError)
        -> [BinaryPackage]
    {
        var parser = PackagesIndexParser(source: source, origin: origin)
        let fed = bytes.withUnsafeBytes { buffer in Result { () throws(PackagesError) in try parser.feed(buffer) } }
        try fed.get()
        return try parser.finish()
    }
}

extension BinaryPackage {
    /// One suite's `ArchiveSource`, held once for all of its packages rather than in each.
    final class SharedSource: Sendable {
        let value: ArchiveSource
        init(_ value: ArchiveSource) { self.value = value }
    }

    /// A SHA-256 as its 32 bytes, not as 64 characters in a string of its own (112 bytes of heap
    /// for each of 60 000 packages); text that is not 64 hex digits is kept as it is.
    enum Digest: Sendable {
        /// The bytes as four words, the first byte in the most significant bits of the first.
        case words(UInt64, UInt64, UInt64, UInt64)
        case text(String)

        init(_ text: String) {
            let digits = Array(text.utf8)
            var words: [UInt64] = []
            if digits.count == 64 {
                for start in stride(from: 0, to: 64, by: 16) {
                    var word: UInt64 = 0
                    for digit in digits[start..<(start + 16)] {
                        guard let value = Self.value(of: digit) else { break }
                        word = word << 4 | UInt64(value)
                    }
                    words.append(word)
                }
            }
            // A digit that is not hex leaves its word short, so the text is checked whole.
            if words.count == 4, digits.allSatisfy({ Self.value(of: $0) != nil }) {
                self = .words(words[0], words[1], words[2], words[3])
            } else {
                self = .text(text)
            }
        }

        /// Lowercase hexadecimal, as Release files and lockfiles write digests.
        var text: String {
            switch self {
            case .text(let text):
                return text
            case .words(let a, let b, let c, let d):
                var bytes: [UInt8] = []
                bytes.reserveCapacity(64)
                for word in [a, b, c, d] {
                    for shift in stride(from: 60, through: 0, by: -4) {
                        bytes.append(Self.hexDigits[Int((word >> UInt64(shift)) & 0xf)])
                    }
                }
                return String(decoding: bytes, as: UTF8.self)
            }
        }

        private static let hexDigits = Array("0123456789abcdef".utf8)

        private static func value(of digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
    }
}
