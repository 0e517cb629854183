import ArgumentParser

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build disk images from a description inside kiln's own QEMU guest."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "Output directory.")
    var output: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        throw CommandFailure("'kiln build' is not available yet in this version of kiln")
    }
}
