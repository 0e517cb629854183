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
                _ = try ApplianceLoader().load(file)
                print("\(file): ok")
            } catch {
                lines += error.diagnostics.map(\.description)
            }
        }
        if !lines.isEmpty { throw CommandFailure(lines: lines) }
    }
}
