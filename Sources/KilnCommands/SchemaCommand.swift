import ArgumentParser

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of the description format."
    )

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    func run() async throws {
        throw CommandFailure("'kiln schema' is not available yet in this version of kiln")
    }
}
