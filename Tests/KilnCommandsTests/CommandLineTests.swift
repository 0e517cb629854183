import Foundation
import Testing

@testable import KilnCommands

/// Runs the real `kiln` binary that `swift build` put beside the test bundle.
struct KilnBinary {
    static var path: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.appendingPathComponent("kiln").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug/kiln").standardized.path
    }

    /// Runs kiln and returns its exit code, stdout and stderr.
    static func run(_ arguments: [String], cwd: String? = nil) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

@Suite struct CommandLineTests {
    @Test func helpExitsZeroAndListsEveryCommand() throws {
        let (code, out, _) = try KilnBinary.run(["--help"])
        #expect(code == 0)
        for command in ["validate", "kickstart", "preseed", "import-kickstart", "schema", "lock", "build", "convert",
                        "inspect", "test", "serve"] {
            #expect(out.contains(command), "help does not list \(command)")
        }
    }

    @Test func unknownOptionIsAUsageError() throws {
        let (code, _, err) = try KilnBinary.run(["kickstart", "--no-such-flag", "x.yaml"])
        #expect(code == 2)
        #expect(err.contains("--no-such-flag"))
    }

    @Test func unknownCommandIsAUsageError() throws {
        let (code, _, _) = try KilnBinary.run(["frobnicate"])
        #expect(code == 2)
    }
}
