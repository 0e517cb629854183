import ArgumentParser

struct ImportKickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-kickstart",
        abstract: "Read an existing kickstart back into a description."
    )

    @Argument(help: "The kickstart.")
    var kickstart: String

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    func run() async throws {
        throw CommandFailure("'kiln import-kickstart' is not available yet in this version of kiln")
    }
}
