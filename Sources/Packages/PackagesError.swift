/// Everything that can go wrong while reading apt sources, talking to an archive, resolving or
/// fetching packages. The message names the path, URL, package or value at fault.
package struct PackagesError: Error, CustomStringConvertible, Sendable, Equatable {
    package enum Code: String, Sendable {
        /// An apt sources file could not be read or parsed.
        case sources
        /// An HTTP request failed or returned an error status.
        case network
        /// `gpgv` rejected a Release file, or the Release file expired.
        case signature
        /// A file's size or SHA-256 differs from what the signed Release or the lockfile says.
        case integrity
        /// A Release, Packages, control or lockfile text is malformed.
        case format
        /// The requested packages cannot be installed together.
        case resolution
        /// The cache or a local file could not be read or written.
        case cache
        /// `--offline` was given and something is not in the cache.
        case offline
        /// A `.deb` file could not be unpacked.
        case archive
    }

    package var code: Code
    package var message: String
    /// What the underlying library or program said, if anything.
    package var cause: String?

    package init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    package var description: String {
        guard let cause, !cause.isEmpty else { return message }
        return "\(message): \(cause)"
    }
}
