import Foundation
import KilnTestSupport
import Testing

@testable import KilnCommands

/// What a newcomer meets in the first hour: the prerequisite check, `kiln version`, suggestions for a
/// mistyped command, and a last line saying what convert wrote.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"))
struct FirstHourTests {
    private func shell(_ script: String, path: String) throws -> (code: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: KilnProgram.packageRoot)
        process.environment = ["PATH": path, "HOME": NSTemporaryDirectory()]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.requires(FileManager.default.isExecutableFile(atPath: "/usr/bin/make"), "make"))
    func makeDepsSaysWhatToInstallWithoutSwift() throws {
        let (code, output) = try shell("make deps", path: "/usr/bin:/bin")
        #expect(code != 0)
        #expect(output.contains("'swift' is not on the PATH"), "\(output)")
        #expect(output.contains("kiln needs a Swift 6 toolchain"), "\(output)")
        #expect(output.contains("/opt/swift/usr/bin"), "\(output)")
        #expect(!output.contains("No such file or directory"), "\(output)")
    }

    @Test func checkSwiftAcceptsTheToolchainThatBuiltKiln() throws {
        // The swift that runs these tests: the toolchain's bin folder is an ancestor of this process's.
        let swift =
            ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":")
            .map { "\($0)/swift" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/opt/swift/usr/bin/swift"
        try #require(FileManager.default.isExecutableFile(atPath: swift), "no swift found")
        let folder = (swift as NSString).deletingLastPathComponent
        let (code, output) = try shell("scripts/check-swift.sh", path: "\(folder):/usr/bin:/bin")
        #expect(code == 0, "\(output)")
        #expect(output.contains("check-swift: Swift 6."), "\(output)")
    }

    @Test func versionNamesTheCommitAndTheLibraries() throws {
        let (code, out, err) = try KilnProgram.run(["version"])
        #expect(code == 0, "\(err)")
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "kiln \(VersionCommand.version)", "\(out)")
        #expect(lines.contains { $0.hasPrefix("commit: ") && !$0.hasSuffix("unknown") }, "\(out)")
        for library in ["swift-argument-parser", "swift-nio", "yams", "libarchive", "zlib", "libyaml"] {
            #expect(lines.contains { $0.hasPrefix("\(library): ") }, "\(library) missing: \(out)")
        }
        #expect(lines.contains { $0.hasPrefix("zlib: 1.") }, "\(out)")
        let (jsonCode, json, _) = try KilnProgram.run(["version", "--json"])
        #expect(jsonCode == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["version"] as? String == VersionCommand.version)
    }

    /// The versions `kiln version` names are the ones Package.resolved pins.
    @Test func versionListsThePinnedPackages() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: KilnProgram.packageRoot + "/Package.resolved"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let pins = (object?["pins"] as? [[String: Any]]) ?? []
        var pinned: [String: String] = [:]
        for pin in pins {
            if let identity = pin["identity"] as? String, let state = pin["state"] as? [String: Any],
                let version = state["version"] as? String
            {
                pinned[identity] = version
            }
        }
        for (name, version) in VersionCommand.swiftPackages {
            #expect(
                pinned[name] == version,
                "\(name): kiln version says \(version), Package.resolved \(pinned[name] ?? "-")")
        }
    }

    @Test func mistypedCommandGetsASuggestion() throws {
        let (code, out, err) = try KilnProgram.run(["biuld", "Appliances/debian-minimal.yaml"])
        #expect(code == 2)
        #expect(out.isEmpty)
        #expect(err == "kiln: error: unknown command 'biuld'; did you mean 'build'?\n", "\(err)")
        let (farCode, _, farErr) = try KilnProgram.run(["frobnicate"])
        #expect(farCode == 2)
        #expect(farErr.contains("kiln: hint: the commands are validate, "), "\(farErr)")
    }

    @Test func outputIsSpelledOutInHelpAndAccepted() throws {
        for command in ["build", "lock", "kickstart", "preseed", "import-kickstart", "schema"] {
            let (code, out, _) = try KilnProgram.run([command, "--help"])
            #expect(code == 0)
            #expect(out.contains("-o, --output <"), "kiln \(command) --help:\n\(out)")
        }
        let dir = NSTemporaryDirectory() + "kiln-first-hour-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, _, err) = try KilnProgram.run(
            ["kickstart", "Appliances/rocky-9.yaml", "--output", dir + "/rocky.ks"], cwd: KilnProgram.packageRoot)
        #expect(code == 0, "\(err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/rocky.ks"))
    }

    @Test func convertEndsWithWhatItWrote() throws {
        let dir = NSTemporaryDirectory() + "kiln-first-hour-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: dir + "/disk.raw"))
        let (code, _, err) = try KilnProgram.run(["convert", "disk.raw", "disk.qcow2"], cwd: dir)
        #expect(code == 0, "\(err)")
        // Each step says how far into the run it starts.
        #expect(err.hasPrefix("kiln: [0:0"), "\(err)")
        #expect(err.contains("] converting 3.0 MiB of data to qcow2\n"), "\(err)")
        let last = err.split(separator: "\n").last.map(String.init)
        #expect(last == "kiln: wrote disk.qcow2 (qcow2, 3.0 MiB virtual, 3.0 MiB on disk)", "\(err)")
        // --quiet: nothing but that line.
        let (quietCode, _, quietErr) = try KilnProgram.run(
            ["--quiet", "convert", "disk.raw", "disk.vdi"], cwd: dir)
        #expect(quietCode == 0)
        #expect(quietErr.split(separator: "\n").count == 1, "\(quietErr)")
        #expect(quietErr.hasPrefix("kiln: wrote disk.vdi (vdi, 3.0 MiB virtual"), "\(quietErr)")
        // The global options work after the command too, as users type them.
        let (afterCode, _, afterErr) = try KilnProgram.run(["convert", "disk.raw", "disk.vhdx", "-q"], cwd: dir)
        #expect(afterCode == 0, "\(afterErr)")
        #expect(afterErr.split(separator: "\n").count == 1, "\(afterErr)")
        let (verboseCode, _, verboseErr) = try KilnProgram.run(
            ["validate", "Appliances/debian-minimal.yaml", "--verbose"], cwd: KilnProgram.packageRoot)
        #expect(verboseCode == 0, "\(verboseErr)")
    }
}
