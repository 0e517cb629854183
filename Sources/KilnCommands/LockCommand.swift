import ArgumentParser

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Resolve a description's packages into a lockfile."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "The lockfile (default: FILE.lock beside the description).")
    var output: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        throw CommandFailure("'kiln lock' is not available yet in this version of kiln")
    }
}
