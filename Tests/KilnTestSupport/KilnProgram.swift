import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The real `kiln` binary that `swift build` put beside the test bundle, for tests that judge kiln
/// as a user runs it: exit code, standard output and standard error.
package enum KilnProgram {
    /// Where the binary is: beside the test bundle (or a few folders up from it).
    package static var path: String? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent("kiln").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return nil
    }

    /// Another executable of the package beside the test bundle (`kiln-fuzz`), when built.
    package static func sibling(_ name: String) -> String? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return nil
    }

    /// Whether the binary was built.
    package static var isBuilt: Bool { path != nil }

    /// The package's root folder (examples, Makefile).
    package static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// A `Process` set up to run kiln with `arguments` (inside the network namespace `namespace`
    /// through `ip netns exec` when one is given); the caller starts it and owns its pipes.
    package static func process(_ arguments: [String], cwd: String? = nil, namespace: String? = nil) -> Process {
        let process = Process()
        let binary = path ?? "kiln"
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip", "netns", "exec", namespace, binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        return process
    }

    /// Runs kiln to its end and returns its exit code, standard output and standard error. Both pipes
    /// are drained at once, so a chatty run cannot block on a full pipe.
    /// `environment`, when given, is kiln's whole environment instead of the test's.
    package static func run(
        _ arguments: [String], cwd: String? = nil, namespace: String? = nil, environment: [String: String]? = nil
    ) throws -> (code: Int32, output: String, errors: String) {
        let process = process(arguments, cwd: cwd, namespace: namespace)
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errors = Collected(err.fileHandleForReading)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self),
            String(decoding: errors.wait(), as: UTF8.self)
        )
    }

    /// The children of `parent`, from /proc.
    package static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // Fields after "(comm)": state, ppid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    /// A pipe read to its end on a thread of its own.
    private final class Collected: @unchecked Sendable {
        // @unchecked: `data` is written by the reading thread before `done` is signalled, and read after.
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }
        }

        func wait() -> Data {
            done.wait()
            return data
        }
    }
}
