/// A build that could not be planned, prepared or finished.
package struct BuilderError: Error, CustomStringConvertible, Sendable {
    package var message: String
    /// The builder guest's last console lines, when the guest failed.
    package var consoleTail: [String]

    package init(_ message: String, consoleTail: [String] = []) {
        self.message = message
        self.consoleTail = consoleTail
    }

    package var description: String { message }
}
