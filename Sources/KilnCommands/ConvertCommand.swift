import ArgumentParser

struct ConvertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a disk image from any supported format to any other."
    )

    @Argument(help: "The source image.")
    var input: String

    @Argument(help: "The image to write.")
    var outputPath: String

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        throw CommandFailure("'kiln convert' is not available yet in this version of kiln")
    }
}
