import Appliance
import ArgumentParser

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check appliance descriptions and report every error as FILE:LINE:COL.",
        discussion: "Prints 'FILE: ok' for each good description; exits 1 if any has an error."
    )

    @Argument(help: "Description files (.yaml or BoxGrinder .appl).")
    var files: [String]

    func run() async throws {
        var lines: [String] = []
        for file in files {
            do {
                let (_, warnings) = try ApplianceLoader.forCommands.loadWithWarnings(file)
                for warning in warnings { Console.standardError.write(warning.description) }
                print("\(file): ok")
            } catch {
                lines += (error.warnings + error.diagnostics).map(\.description)
            }
        }
        if !lines.isEmpty { throw CommandFailure(lines: lines) }
    }
}
