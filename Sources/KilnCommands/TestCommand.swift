import ArgumentParser

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Boot an image under QEMU and wait for its login prompt."
    )

    @Argument(help: "The image.")
    var image: String

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        throw CommandFailure("'kiln test' is not available yet in this version of kiln")
    }
}
