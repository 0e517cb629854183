import Appliance
import ArgumentParser
import Autoinstall
import KilnSupport

struct KickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kickstart",
        abstract: "Write the kickstart for an RPM-family description."
    )

    @Argument(help: "The description.")
    var file: String

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

    func run() async throws {
        let appliance = try ApplianceLoader.loadForCommand(file)
        let text: String
        do {
            let rendered = try KickstartRenderer().renderWithWarnings(appliance)
            for warning in rendered.warnings { Console.standardError.write("kiln: warning: \(file): \(warning)") }
            text = rendered.text
        } catch {
            throw CommandFailure("\(file): \(error.message)")
        }
        try emit(text, to: output)
    }
}

/// Writes a command's text to `-o` atomically, or to standard output.
func emit(_ text: String, to output: String?) throws {
    if let output {
        try AtomicOutput.write(text, to: output)
    } else {
        print(text, terminator: "")
    }
}
