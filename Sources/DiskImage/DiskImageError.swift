/// Why a disk image could not be read or written.
package struct DiskImageError: Error, CustomStringConvertible, Sendable {
    package enum Code: String, Sendable {
        /// The file could not be opened, read or written.
        case io
        /// The file is not a valid image of the format it claims (bad magic, bad header, bad table).
        case corrupt
        /// The file ends before data that its headers point to.
        case truncated
        /// A valid image that uses a feature kiln does not handle.
        case unsupported
        /// The format detected from the content differs from the one the name or caller asked for.
        case formatMismatch
        /// The image reads through a backing file that kiln was not allowed to open, or may not open.
        case backingFile
        /// The caller asked for something that makes no sense (unknown format, bad size).
        case invalidArgument
    }

    package var code: Code
    package var message: String
    /// The underlying error, when one caused this.
    package var cause: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    package var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}
