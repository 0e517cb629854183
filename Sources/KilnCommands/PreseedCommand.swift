import Appliance
import ArgumentParser
import Autoinstall

struct PreseedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preseed",
        abstract: "Write the preseed for a Debian-family description.",
        discussion: "Without repos in the description, the mirror is the host's apt sources."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    /// Where `etc/apt` is read from; `make kickstarts` points it at an example tree so that the
    /// committed preseeds do not depend on the machine that made them.
    @Option(name: .customLong("apt-root"), help: .hidden)
    var aptRoot = "/"

    func run() async throws {
        let appliance = try ApplianceLoader.loadForCommand(file)
        let text: String
        do {
            text = try PreseedRenderer(hostSources: HostAptSources.read(root: aptRoot)).render(appliance)
        } catch {
            throw CommandFailure("\(file): \(error.message)")
        }
        try emit(text, to: output)
    }
}
