import Foundation
import KilnTestSupport
import Testing

@testable import KilnCommands

@Suite struct CommandLineTests {
    @Test func helpExitsZeroAndListsEveryCommand() throws {
        let (code, out, _) = try KilnProgram.run(["--help"])
        #expect(code == 0)
        for command in [
            "validate", "kickstart", "preseed", "import-kickstart", "schema", "lock", "build", "convert",
            "inspect", "test", "serve",
        ] {
            #expect(out.contains(command), "help does not list \(command)")
        }
    }

    @Test func unknownOptionIsAUsageError() throws {
        let (code, _, err) = try KilnProgram.run(["kickstart", "--no-such-flag", "x.yaml"])
        #expect(code == 2)
        #expect(err.contains("--no-such-flag"))
    }

    @Test func unknownCommandIsAUsageError() throws {
        let (code, _, _) = try KilnProgram.run(["frobnicate"])
        #expect(code == 2)
    }
}
