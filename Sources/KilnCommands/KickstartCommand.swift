import ArgumentParser

struct KickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kickstart",
        abstract: "Write the kickstart for an RPM-family description."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    func run() async throws {
        throw CommandFailure("'kiln kickstart' is not available yet in this version of kiln")
    }
}
