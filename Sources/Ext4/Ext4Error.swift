/// What went wrong while writing an ext4 file system: the kind, a message naming the path or value,
/// and the error that caused it, if any.
package struct Ext4Error: Error, CustomStringConvertible, Sendable {
    package enum Code: Sendable, Equatable {
        /// A path that ext4 cannot hold or that would escape its parent (`..`, empty, too long).
        case invalidPath
        /// An entry that contradicts what came before (a duplicate, a missing parent or link target).
        case invalidEntry
        /// File data that does not match the size its entry declared.
        case sizeMismatch
        /// The file system is too small for what it is given (blocks or inodes).
        case noSpace
        /// The region or the options cannot hold a file system.
        case invalidGeometry
        /// Reading or writing the disk file failed.
        case io
        /// The writer already failed or finished.
        case unusable
        /// The source of a file's bytes failed.
        case contents
    }

    package var code: Code
    package var message: String
    package var cause: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    package var description: String {
        guard let cause else { return message }
        return "\(message): \(cause)"
    }
}
