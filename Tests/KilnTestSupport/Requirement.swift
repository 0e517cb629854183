import Foundation
import Testing

/// What a test needs that the machine may lack (a tool, root, the kiln binary), and the one switch
/// that decides whether its absence skips the test or fails it.
///
/// Every test that depends on something outside the package declares it with `.requires(...)` rather
/// than `.enabled(if:)`: on a developer's machine the test is skipped, saying what it needs; with
/// `KILN_REQUIRE_ALL=1` (which `.ci/run` sets) the same test fails, naming what was missing, so a green
/// CI run means that every test ran.
package enum Requirement {
    /// `KILN_REQUIRE_ALL=1`: a missing requirement is a failure, not a skip.
    package static var requireAll: Bool { ProcessInfo.processInfo.environment["KILN_REQUIRE_ALL"] == "1" }

    /// The error a test fails with under `KILN_REQUIRE_ALL=1` when `what` is missing.
    package struct Missing: Error, CustomStringConvertible {
        package var what: String
        package var description: String {
            "missing requirement: \(what) (KILN_REQUIRE_ALL=1 turns this skip into a failure)"
        }
    }

    /// Whether a program is on the PATH (or at an absolute path given).
    package static func hasProgram(_ name: String) -> Bool {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return dirs.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Whether kiln runs as root (network namespaces, nftables).
    package static var isRoot: Bool { getuid() == 0 }

    /// One thing a test needs.
    package enum Need: Sendable {
        /// Running as root (network namespaces, nftables, loop devices).
        case root
        /// A program on the PATH (or in /usr/sbin, /sbin).
        case program(String)
        /// A file, such as firmware.
        case file(String)
        /// The kiln binary beside the test bundle (`swift build --build-tests`).
        case kilnBinary
        /// Anything else: whether it holds, and what it is.
        case condition(@Sendable () -> Bool, String)

        var isMet: Bool {
            switch self {
            case .root: return Requirement.isRoot
            case .program(let name): return Requirement.hasProgram(name)
            case .file(let path): return FileManager.default.fileExists(atPath: path)
            case .kilnBinary: return KilnProgram.isBuilt
            case .condition(let check, _): return check()
            }
        }

        var name: String {
            switch self {
            case .root: return "root"
            case .program(let name): return name
            case .file(let path): return path
            case .kilnBinary: return "the kiln binary (swift build --build-tests)"
            case .condition(_, let what): return what
            }
        }
    }

    /// Whether a test runs: true when nothing is missing; false (a skip) when something is, unless
    /// `requireAll`, when it throws `Missing` naming what is missing (a failure).
    package static func decide(missing: [String], requireAll: Bool) throws -> Bool {
        if missing.isEmpty { return true }
        if requireAll { throw Missing(what: missing.joined(separator: ", ")) }
        return false
    }

    /// For a part of a test that runs only when `needs` are met: whether they are; with
    /// `KILN_REQUIRE_ALL=1` a missing one is also recorded as an issue (the test fails).
    package static func available(_ needs: Need..., sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let missing = missing(needs)
        if missing.isEmpty { return true }
        if requireAll {
            Issue.record(
                Comment(rawValue: Missing(what: missing.joined(separator: ", ")).description),
                sourceLocation: sourceLocation)
        }
        return false
    }

    /// What of `needs` is missing, by name.
    package static func missing(_ needs: [Need]) -> [String] { needs.filter { !$0.isMet }.map(\.name) }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test or suite only when `available` is true, saying that it needs `what` when it skips;
    /// with `KILN_REQUIRE_ALL=1` a missing requirement fails the test instead.
    package static func requires(
        _ available: @autoclosure @escaping @Sendable () -> Bool, _ what: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        .enabled("needs \(what)", sourceLocation: sourceLocation) {
            try Requirement.decide(missing: available() ? [] : [what], requireAll: Requirement.requireAll)
        }
    }

    /// Runs the test or suite only when every one of `needs` is met; skips (or, with `KILN_REQUIRE_ALL=1`,
    /// fails) naming exactly those that are missing.
    package static func requires(
        _ needs: Requirement.Need..., sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        let names = needs.map(\.name).joined(separator: ", ")
        return .enabled("needs \(names)", sourceLocation: sourceLocation) {
            try Requirement.decide(missing: Requirement.missing(needs), requireAll: Requirement.requireAll)
        }
    }

    /// `requires` for several programs: each missing one is named.
    package static func requiresPrograms(
        _ programs: [String], _ note: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        .enabled("needs \(programs.joined(separator: ", "))", sourceLocation: sourceLocation) {
            let missing = programs.filter { !Requirement.hasProgram($0) }
            return try Requirement.decide(
                missing: missing.isEmpty ? [] : [missing.joined(separator: ", ") + (note.map { " (\($0))" } ?? "")],
                requireAll: Requirement.requireAll)
        }
    }
}
