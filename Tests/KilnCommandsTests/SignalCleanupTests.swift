import Foundation
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// The waits below sleep the test's thread instead of awaiting: in the whole suite, other tests' work
// can hold every thread of the shared pool, and an awaiting test resumed only after kiln had finished.

/// Whatever signal ends `kiln convert` (a closed terminal's SIGHUP, a closed pipe's SIGPIPE, SIGTERM,
/// ^C), no partial output is left behind, hidden or not, and kiln exits 128 + the signal.
@Suite(.serialized, .requires(KilnProgram.isBuilt, "the kiln binary"))
struct SignalCleanupTests {
    /// A raw image of 128 MiB of random data: slow enough to compress that a signal arrives mid-way.
    private func makeInput(_ dir: String) throws { try TestData.writeRandom(mebibytes: 128, to: dir + "/in.raw") }

    private func leftovers(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0 != "in.raw" }.sorted()
    }

    @Test(arguments: [SIGHUP, SIGTERM, SIGINT])
    func signalRemovesThePartialOutput(_ signalNumber: Int32) async throws {
        let dir = NSTemporaryDirectory() + "kiln-signal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeInput(dir)
        let process = KilnProgram.process(
            ["convert", "in.raw", "out.qcow2", "--compress", "--compression-level", "9"], cwd: dir)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Until the partial output exists.
        let deadline = ContinuousClock.now + .seconds(30)
        while leftovers(dir).isEmpty && process.isRunning && ContinuousClock.now < deadline {
            usleep(20_000)
        }
        try #require(process.isRunning, "the conversion ended before it could be interrupted")
        #expect(leftovers(dir).first?.hasPrefix(".out.qcow2.kiln-") == true, "\(leftovers(dir))")
        usleep(200_000)
        kill(process.processIdentifier, signalNumber)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "kiln died of the signal without cleaning up")
        #expect(process.terminationStatus == 128 + signalNumber)
        #expect(leftovers(dir).isEmpty, "left behind: \(leftovers(dir))")
    }

    @Test func closedPipeRemovesThePartialOutput() async throws {
        let dir = NSTemporaryDirectory() + "kiln-signal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try makeInput(dir)
        let kiln = try #require(KilnProgram.path)
        // As a user types it: the JSON's first line is all head wants.
        let script = """
            ( "$1" convert in.raw out.qcow2 --compress --compression-level 9 --json; echo $? > status ) | head -1
            """
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script, "sh", kiln]
        shell.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        shell.standardOutput = out
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let first = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(first.contains("\"event\":\"step\""), "\(first)")
        let status = try String(contentsOfFile: dir + "/status", encoding: .utf8)
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "141", "kiln's exit status: \(status)")
        #expect(leftovers(dir) == ["status"], "left behind: \(leftovers(dir))")
    }
}
