/// One binary package as a Packages index describes it. Relationship fields are kept as text and
/// parsed when the resolver reaches the package: an index holds 60 000 stanzas and a build needs
/// a few hundred.
public struct BinaryPackage: Sendable {
    public var name: String
    public var version: DebianVersion
    public var architecture: String
    public var multiArch: String?
    public var priority: String?
    public var essential: Bool
    public var depends: String?
    public var preDepends: String?
    public var provides: String?
    public var conflicts: String?
    public var breaks: String?
    /// The path below the archive's base URI (`pool/main/...`).
    public var filename: String
    public var size: Int64
    public var sha256: String
    /// The suite this stanza came from.
    public var source: ArchiveSource

    public init(
        name: String, version: DebianVersion, architecture: String, multiArch: String? = nil, priority: String? = nil,
        essential: Bool = false, depends: String? = nil, preDepends: String? = nil, provides: String? = nil,
        conflicts: String? = nil, breaks: String? = nil, filename: String, size: Int64, sha256: String,
        source: ArchiveSource
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

    /// `name=version`, how messages name a package.
    public var label: String { "\(name)=\(version)" }

    /// The file's URL in its archive.
    public var url: String { source.poolURL(filename) }

    /// Parses all packages of a decompressed Packages index.
    static func parseIndex(_ bytes: [UInt8], source: ArchiveSource, origin: String) throws(PackagesError)
        -> [BinaryPackage]
    {
        var parser = PackagesIndexParser(source: source, origin: origin)
        let fed = bytes.withUnsafeBytes { buffer in Result { () throws(PackagesError) in try parser.feed(buffer) } }
        try fed.get()
        return try parser.finish()
    }
}
