import Foundation

/// The signed `InRelease` of one suite, after `gpgv` accepted it: when it was made, until when it
/// is valid, and the SHA-256 and size of every index it lists.
package struct Release: Sendable {
    package struct FileEntry: Sendable, Equatable {
        package var sha256: String
        package var size: Int64
    }

    package var source: ArchiveSource
    /// `Date:` as written (RFC 2822).
    package var date: String
    package var validUntil: String?
    package var codename: String?
    package var suiteName: String?
    /// Index paths relative to `dists/<suite>/`, from the `SHA256:` field.
    package var files: [String: FileEntry]
    /// SHA-256 of the whole `InRelease` file as fetched.
    package var inReleaseSHA256: String
    /// `Acquire-By-Hash: yes`: each index is also published under `by-hash/SHA256/<digest>` beside it,
    /// a name that never changes, so an archive updated between the `InRelease` and an index being
    /// fetched still serves the index this Release signed.
    package var acquireByHash = false

    /// Parses the signed text (what `gpgv --output` wrote: the Release fields without the armor).
    package init(signedText: String, source: ArchiveSource, inReleaseSHA256: String, now: Date = Date())
        throws(PackagesError)
    {
        let origin = source.distsURL("InRelease")
        guard let stanza = try ControlFile.parse(signedText, origin: origin).first else {
            throw PackagesError(.format, "\(origin): empty Release file")
        }
        guard let date = stanza["Date"] else { throw PackagesError(.format, "\(origin): no Date field") }
        guard let list = stanza["SHA256"] else { throw PackagesError(.format, "\(origin): no SHA256 field") }
        var files: [String: FileEntry] = [:]
        for line in list.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let size = Int64(parts[1]), parts[0].count == 64 else {
                throw PackagesError(.format, "\(origin): bad SHA256 line '\(line)'")
            }
            files[String(parts[2])] = FileEntry(sha256: String(parts[0]).lowercased(), size: size)
        }
        self.source = source
        self.date = date
        self.validUntil = stanza["Valid-Until"]
        self.codename = stanza["Codename"]
        self.suiteName = stanza["Suite"]
        self.files = files
        self.inReleaseSHA256 = inReleaseSHA256
        self.acquireByHash = stanza["Acquire-By-Hash"]?.lowercased() == "yes"
        if let validUntil, let expiry = Self.parseDate(validUntil), expiry < now {
            throw PackagesError(.signature, "\(origin): the Release file expired on \(validUntil)")
        }
    }

    /// The by-hash URL of the index `name` (relative to `dists/<suite>/`), when the Release offers one.
    package func byHashURL(_ name: String) -> String? {
        guard acquireByHash, let entry = files[name] else { return nil }
        let folder = name.split(separator: "/").dropLast().joined(separator: "/")
        return source.distsURL("\(folder.isEmpty ? "" : folder + "/")by-hash/SHA256/\(entry.sha256)")
    }

    /// An RFC 2822 date as Release files write it ("Sat, 11 Jul 2026 10:16:37 UTC").
    package static func parseDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEE, dd MMM yyyy HH:mm:ss Z", "dd MMM yyyy HH:mm:ss zzz"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
