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

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("Output file (default: standard output).", valueName: "file"))
    var output: String?

    @OptionGroup var progress: ProgressOptions

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
        try emit(text, to: output, json: progress.json)
    }
}

/// Writes a command's text to `-o` atomically, or prints it. With `--json`, stdout carries one result
/// object instead: the output file and its size, or the text itself, and any `warnings`.
func emit(_ text: String, to output: String?, json: Bool = false, warnings: [String]? = nil) throws {
    if let output {
        try AtomicOutput.write(text, to: output)
    } else if !json {
        print(text, terminator: "")
    }
    guard json else { return }
    Console(json: true).result(
        TextResult(
            output: output, bytes: output.map { _ in text.utf8.count }, text: output == nil ? text : nil,
            warnings: warnings))
}

/// The result of a command that writes a text (kickstart, preseed, an imported description).
struct TextResult: Encodable {
    let output: String?
    let bytes: Int?
    let text: String?
    let warnings: [String]?
}
