import ArgumentParser

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve PXE installs: TFTP, HTTP and DHCP."
    )

    @Option(help: "The lab file.")
    var config: String?

    func run() async throws {
        throw CommandFailure("'kiln serve' is not available yet in this version of kiln")
    }
}
