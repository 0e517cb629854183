import Foundation
import KilnTestSupport
import Testing

/// Every seed of the fuzz corpora, and every input a fuzzer ever crashed kiln with, replayed through
/// the fuzz targets' code (the plain build of `kiln-fuzz`, a subprocess, so that a trap is a signal).
@Suite(.requires(.condition({ KilnProgram.sibling("kiln-fuzz") != nil }, "the kiln-fuzz binary (swift build)")))
struct FuzzCorpusTests {
    @Test(arguments: ["disk", "tftp", "dhcp", "http", "description", "lab", "kickstart", "packages", "archive"])
    func corpusAndCrashesReplayCleanly(_ target: String) throws {
        let root = KilnProgram.packageRoot + "/Tests/Fuzz"
        var files: [String] = []
        for folder in ["\(root)/corpus/\(target)", "\(root)/crashes"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            files += names.filter { folder.hasSuffix(target) || $0.hasPrefix("\(target)-") }.sorted().map {
                "\(folder)/\($0)"
            }
        }
        #expect(files.count >= 2, "no corpus for \(target)")
        let binary = try #require(KilnProgram.sibling("kiln-fuzz"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [target] + files
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "kiln-fuzz \(target) died of signal \(process.terminationStatus)")
        #expect(process.terminationStatus == 0)
    }
}
