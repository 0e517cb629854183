import Foundation
import Packages

@testable import Appliance
@testable import Autoinstall

/// The package's root, from this file's place in it.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures"

/// The judges nobody here wrote: pykickstart's ksvalidator and debconf-set-selections.
enum Judge {
    /// ksvalidator on PATH, else the one `scripts/install-deps.sh` puts in .tools/venv.
    static let ksvalidator: String? = {
        let candidates =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/ksvalidator" }
            + [packageRoot + "/.tools/venv/bin/ksvalidator"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The Python that has pykickstart, for reading what it makes of a kickstart.
    static let python: String? = {
        let path = packageRoot + "/.tools/venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    /// What pykickstart reads from a kickstart at a syntax version (Fixtures/kickstart-facts.py).
    static func kickstartFacts(_ path: String, version: String) throws -> [String: Any] {
        guard let python else { return [:] }
        let (status, output) = try runSplit(python, [fixtures + "/kickstart-facts.py", path, version])
        guard status == 0, let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        else { throw AutoinstallError(.invalidKickstart, "pykickstart could not read \(path): \(output)") }
        return object
    }

    /// Like `run`, but only standard output (pykickstart warns on standard error).
    static func runSplit(_ program: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static let debconf: String? = ["/usr/bin/debconf-set-selections", "/bin/debconf-set-selections"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs a program; returns its exit status and everything it printed.
    static func run(_ program: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func temporaryFile(_ text: String, suffix: String) throws -> String {
        let path = NSTemporaryDirectory() + "kiln-judge-\(UUID().uuidString)\(suffix)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// ksvalidator's verdict on kickstarts of one syntax version (`F40`, `RHEL9`), in one run:
    /// nil when it accepts them all.
    static func kickstartProblems(_ kickstarts: [String], version: String) throws -> String? {
        guard let ksvalidator else { return "ksvalidator not found" }
        let paths = try kickstarts.map { try temporaryFile($0, suffix: ".ks") }
        defer { for path in paths { try? FileManager.default.removeItem(atPath: path) } }
        let (status, output) = try run(ksvalidator, ["-v", version] + paths)
        return status == 0 ? nil : "ksvalidator -v \(version): \(output)"
    }

    static func kickstartProblems(_ kickstart: String, os: OperatingSystem) throws -> String? {
        try kickstartProblems([kickstart], version: KickstartRenderer.syntaxVersion(for: os))
    }

    /// debconf-set-selections' verdict on `preseed`: nil when it accepts it without a warning.
    static func preseedProblems(_ preseed: String) throws -> String? {
        guard let debconf else { return "debconf-set-selections not found" }
        let path = try temporaryFile(preseed, suffix: ".preseed")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(debconf, ["--checkonly", path])
        return status == 0 && output.isEmpty ? nil : "debconf-set-selections --checkonly: \(status) \(output)"
    }
}

/// Apt sources for tests: what a host with an example mirror has.
let exampleHostSources = [
    ArchiveSource(uri: "http://deb.example.org/debian", suite: "bookworm", components: ["main"]),
    ArchiveSource(uri: "http://deb.example.org/debian", suite: "bookworm-updates", components: ["main"]),
    ArchiveSource(uri: "http://security.example.org/debian-security", suite: "bookworm-security", components: ["main"]),
]

func loadFixture(_ name: String) throws -> Appliance {
    try ApplianceLoader().load("\(fixtures)/\(name)")
}
