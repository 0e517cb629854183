import Appliance
import ArgumentParser
import Autoinstall
import Packages

struct PreseedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preseed",
        abstract: "Write the preseed for a Debian-family description.",
        discussion: "Without repos in the description, the mirror is the host's apt sources."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("Output file (default: standard output).", valueName: "file"))
    var output: String?

    /// Where `etc/apt` is read from; `make kickstarts` points it at an example tree so that the
    /// committed preseeds do not depend on the machine that made them.
    @Option(name: .customLong("apt-root"), help: .hidden)
    var aptRoot = "/"

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let appliance = try ApplianceLoader.loadForCommand(file)
        let text: String
        do {
            let host = try AptSources.load(
                listFile: "\(aptRoot)/etc/apt/sources.list", partsDirectory: "\(aptRoot)/etc/apt/sources.list.d")
            text = try PreseedRenderer(hostSources: host).render(appliance)
        } catch let error as AutoinstallError {
            throw CommandFailure("\(file): \(error.message)")
        } catch {
            throw CommandFailure("\(file): \(error)")
        }
        try emit(text, to: output, json: progress.json)
    }
}
