import Appliance
import ArgumentParser

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of the description format.",
        discussion: "Point an editor's YAML language server at it for completion and checks while typing."
    )

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("Output file (default: standard output).", valueName: "file"))
    var output: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        try emit(ApplianceSchema.json, to: output, json: progress.json)
    }
}
