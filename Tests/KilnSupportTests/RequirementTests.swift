import Foundation
import KilnTestSupport
import Testing

/// The switch that turns a skip into a failure: what `.ci/run` relies on.
@Suite struct RequirementTests {
    @Test func aMissingRequirementSkipsOrFailsNamingIt() throws {
        let missing = Requirement.missing([
            .program("sh"), .program("kiln-no-such-program"), .file("/no/such/firmware.fd"),
            .condition({ true }, "always"), .condition({ false }, "never"),
        ])
        #expect(missing == ["kiln-no-such-program", "/no/such/firmware.fd", "never"])
        #expect(try Requirement.decide(missing: [], requireAll: true))
        #expect(try Requirement.decide(missing: missing, requireAll: false) == false)
        #expect {
            try Requirement.decide(missing: missing, requireAll: true)
        } throws: { error in
            "\(error)".contains("kiln-no-such-program, /no/such/firmware.fd, never")
                && "\(error)".contains("KILN_REQUIRE_ALL=1")
        }
    }

    @Test(.requires(.program("python3")))
    func theSummaryCountsSkipsAndStoppedTests() throws {
        let log = """
            ✔ Test a() passed after 0.1 seconds.
            ✔ Test case passing 1 argument x to b(_:) passed after 0.1 seconds.
            ✔ Test b(_:) passed after 0.2 seconds.
            ➜ Test c() skipped: "needs curl"
            ✘ Test d() recorded an issue at X.swift:1:1: Expectation failed
            ✘ Test d() failed after 0.3 seconds with 1 issue.
            ✘ Test e() recorded an issue: Caught error: missing requirement: curl
            ✘ Test run with 4 tests in 2 suites failed after 1.0 seconds with 2 issues.
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", KilnProgram.packageRoot + "/scripts/test-summary.py", "-"]
        let input = Pipe()
        let out = Pipe()
        process.standardInput = input
        process.standardOutput = out
        try process.run()
        input.fileHandleForWriting.write(Data(log.utf8))
        try input.fileHandleForWriting.close()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(output.hasSuffix("2 passed, 2 failed, 1 skipped\n"), "\(output)")
    }
}
