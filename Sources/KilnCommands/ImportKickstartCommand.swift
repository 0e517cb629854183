import Appliance
import ArgumentParser
import Autoinstall
import Foundation

struct ImportKickstartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-kickstart",
        abstract: "Read an existing kickstart back into a description.",
        discussion: """
            Reads what kiln writes and the common hand-written forms (autopart, part --grow, %packages with \
            -exclusions, %post). Parts a description cannot hold are named in warnings on stderr.
            """
    )

    @Argument(help: "The kickstart.")
    var kickstart: String

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("Output file (default: standard output).", valueName: "file"))
    var output: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: kickstart) else {
            throw CommandFailure("cannot read \(kickstart)")
        }
        let base = ((kickstart as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = String(base.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" })
        let result: KickstartImporter.Result
        do {
            result = try KickstartImporter().read(
                String(decoding: data, as: UTF8.self), name: name.isEmpty ? "imported" : name)
        } catch {
            throw CommandFailure("\(kickstart): \(error.message)")
        }
        var warnings = result.warnings.map { "\(kickstart): \($0)" }
        let yaml = ApplianceWriter.yaml(result.appliance)
        warnings += problems(in: yaml)
        for warning in warnings { Console.standardError.write("kiln: warning: \(warning)") }
        try emit(yaml, to: output, json: progress.json, extra: ["warnings": warnings])
    }

    /// What `kiln validate` would say about the imported description: a hand-written kickstart may
    /// hold values a description refuses.
    private func problems(in yaml: String) -> [String] {
        let dir = NSTemporaryDirectory() + "kiln-import-\(UUID().uuidString)"
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else {
            return []
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/imported.yaml"
        guard (try? yaml.write(toFile: path, atomically: true, encoding: .utf8)) != nil else { return [] }
        do {
            _ = try ApplianceLoader().load(path)
            return []
        } catch {
            let shown = output ?? "the imported description"
            return error.diagnostics.map { "\(shown):\($0.mark.line):\($0.mark.column): \($0.message)" }
        }
    }
}
