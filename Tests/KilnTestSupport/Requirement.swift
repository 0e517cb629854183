import Foundation
import Testing

/// What a test needs that the machine may lack (a tool, root, the kiln binary), and the one switch
/// that decides whether its absence skips the test or fails it.
///
/// Every test that depends on something outside the package declares it with `.requires(...)` rather
/// than `.enabled(if:)`: on a developer's machine the test is skipped, saying what it needs; with
/// `KILN_REQUIRE_ALL=1` (which `.ci/run` sets) the same test fails, naming what was missing, so a green
/// CI run means that every test ran.
public enum Requirement {
    /// `KILN_REQUIRE_ALL=1`: a missing requirement is a failure, not a skip.
    public static var requireAll: Bool { ProcessInfo.processInfo.environment["KILN_REQUIRE_ALL"] == "1" }

    /// The error a test fails with under `KILN_REQUIRE_ALL=1` when `what` is missing.
    public struct Missing: Error, CustomStringConvertible {
        public var what: String
        public var description: String {
            "missing requirement: \(what) (KILN_REQUIRE_ALL=1 turns this skip into a failure)"
        }
    }

    /// Whether a program is on the PATH (or at an absolute path given).
    public static func hasProgram(_ name: String) -> Bool {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return dirs.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Whether kiln runs as root (network namespaces, nftables).
    public static var isRoot: Bool { getuid() == 0 }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test or suite only when `available` is true, saying that it needs `what` when it skips;
    /// with `KILN_REQUIRE_ALL=1` a missing requirement fails the test instead.
    public static func requires(
        _ available: @autoclosure @escaping @Sendable () -> Bool, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        .enabled("needs \(what)", sourceLocation: sourceLocation) {
            if available() { return true }
            if Requirement.requireAll { throw Requirement.Missing(what: what) }
            return false
        }
    }

    /// `requires` for several programs: each missing one is named.
    public static func requiresPrograms(
        _ programs: [String], _ note: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        .enabled("needs \(programs.joined(separator: ", "))", sourceLocation: sourceLocation) {
            let missing = programs.filter { !Requirement.hasProgram($0) }
            if missing.isEmpty { return true }
            if Requirement.requireAll {
                throw Requirement.Missing(what: missing.joined(separator: ", ") + (note.map { " (\($0))" } ?? ""))
            }
            return false
        }
    }
}
