import ArgumentParser

struct PreseedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preseed",
        abstract: "Write the preseed for a Debian-family description."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    func run() async throws {
        throw CommandFailure("'kiln preseed' is not available yet in this version of kiln")
    }
}
