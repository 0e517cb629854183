import CKilnArchive

/// The libarchive kiln runs with, for `kiln version`.
package enum LibarchiveVersion {
    /// "3.6.2 zlib/1.2.13 liblzma/5.4.1 ...": its version and the libraries it was built with.
    package static var text: String {
        let details = String(cString: archive_version_details())
        return details.hasPrefix("libarchive ") ? String(details.dropFirst("libarchive ".count)) : details
    }
}
