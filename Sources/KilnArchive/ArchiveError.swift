/// A libarchive call that failed, or an archive that is not what it should be.
package struct ArchiveError: Error, CustomStringConvertible, Sendable {
    /// The archive (a path, or "outer.deb:data.tar.xz" for a member).
    package var archive: String
    package var message: String

    package init(_ archive: String, _ message: String) {
        self.archive = archive
        self.message = message
    }

    package var description: String { "\(archive): \(message)" }
}
