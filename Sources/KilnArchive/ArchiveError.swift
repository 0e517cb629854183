/// A libarchive call that failed, or an archive that is not what it should be.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    /// The archive (a path, or "outer.deb:data.tar.xz" for a member).
    public var archive: String
    public var message: String

    public init(_ archive: String, _ message: String) {
        self.archive = archive
        self.message = message
    }

    public var description: String { "\(archive): \(message)" }
}
