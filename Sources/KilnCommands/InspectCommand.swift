import ArgumentParser

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image's format, virtual size, allocated bytes and partitions."
    )

    @Argument(help: "The image.")
    var image: String

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        throw CommandFailure("'kiln inspect' is not available yet in this version of kiln")
    }
}
