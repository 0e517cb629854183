/// A build that could not be planned, prepared or finished.
public struct BuilderError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The builder guest's last console lines, when the guest failed.
    public var consoleTail: [String]

    public init(_ message: String, consoleTail: [String] = []) {
        self.message = message
        self.consoleTail = consoleTail
    }

    public var description: String { message }
}
