import Foundation
import Testing

@testable import KilnSupport

@Suite struct SubprocessTests {
    @Test func capturesOutputAndExitStatus() async throws {
        let (ended, text) = try await Subprocess.output(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(ended == .exited(3))
        #expect(text.contains("out"))
        #expect(text.contains("err"))
    }

    @Test func childSeesOnlyTheGivenEnvironment() async throws {
        let (_, text) = try await Subprocess.output(["env"], environment: ["PATH": "/usr/bin:/bin", "ONLY": "this"])
        let names = text.split(separator: "\n").map { $0.split(separator: "=").first.map(String.init) ?? "" }
        #expect(Set(names) == ["PATH", "ONLY"])
    }

    @Test func failureNamesTheQuotedCommand() async throws {
        let child = Subprocess(["sh", "-c", "exit 7", "it's"])
        do {
            try await child.run()
            Issue.record("a failing child did not throw")
        } catch {
            #expect(error.description.contains("sh -c 'exit 7' 'it'\\''s'"))
            #expect(error.description.contains("exit status 7"))
        }
    }

    @Test func missingProgramIsReported() async {
        let child = Subprocess(["kiln-no-such-program-here"])
        #expect(throws: SubprocessError.self) { try child.start() }
    }

    @Test func stopEndsTheWholeProcessGroup() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pidFile = dir.appendingPathComponent("grandchild").path
        // The grandchild ignores nothing; it must die with its group.
        let child = Subprocess(["sh", "-c", "sleep 60 & echo $! > \(pidFile); wait"])
        try child.start()
        var grandchild: Int32 = 0
        for _ in 0..<200 where grandchild == 0 {
            try await Task.sleep(for: .milliseconds(10))
            grandchild =
                Int32(
                    (try? String(contentsOfFile: pidFile, encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        #expect(grandchild > 0)
        let ended = await child.stop(grace: .seconds(2))
        #expect(ended == .signalled(SIGTERM))
        try await Task.sleep(for: .milliseconds(100))
        // Gone, or a zombie waiting for a reaper: either way no longer running.
        let state = (try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8))?
            .split(separator: ")").last?.split(separator: " ").first
        #expect(state == nil || state == "Z", "grandchild still running: \(state.map(String.init) ?? "")")
    }

    @Test func logFileReceivesBothStreams() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-log-\(UUID().uuidString)").path
        defer { unlink(log) }
        try await Subprocess(["sh", "-c", "echo one; echo two >&2"], output: .logFile(log)).run()
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text == "one\ntwo\n")
    }
}

@Suite struct ShellQuoteTests {
    @Test(arguments: [
        ("plain/path-1.2", "plain/path-1.2"),
        ("", "''"),
        ("a b", "'a b'"),
        ("$(rm -rf /)", "'$(rm -rf /)'"),
        ("it's", "'it'\\''s'"),
    ])
    func quotes(word: String, quoted: String) {
        #expect(ShellQuote.quote(word) == quoted)
    }
}
