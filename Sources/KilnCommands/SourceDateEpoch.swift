import Foundation

/// SOURCE_DATE_EPOCH (reproducible-builds.org) as the user set it: read here, at the command line,
/// and passed to the writers as a parameter; nothing below the commands reads the environment for it.
enum SourceDateEpoch {
    /// The variable's value when it is a whole, non-negative number of seconds.
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int64? {
        environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil }
    }
}
