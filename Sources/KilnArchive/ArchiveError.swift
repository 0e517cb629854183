import CKilnArchive
import SystemPackage

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

extension ArchiveError {
    /// The error libarchive recorded on `handle` for `action`, with the system's reason when it
    /// has one that its text leaves out ("Write error" on a full disk says which).
    init(_ archive: String, _ action: String, handle: OpaquePointer?) {
        let code = archive_errno(handle)
        var reason = archive_error_string(handle).map { String(cString: $0) } ?? "error \(code)"
        if code > 0 {
            let system = Errno(rawValue: code).description
            if !reason.contains(system) { reason += ": \(system)" }
        }
        self.init(archive, "\(action): \(reason)")
    }
}
