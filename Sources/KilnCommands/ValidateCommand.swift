import ArgumentParser

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check appliance descriptions and report every error as FILE:LINE:COL."
    )

    @Argument(help: "Description files (.yaml or BoxGrinder .appl).")
    var files: [String]

    func run() async throws {
        throw CommandFailure("'kiln validate' is not available yet in this version of kiln")
    }
}
