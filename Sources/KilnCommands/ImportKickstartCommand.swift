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
            -exclusions, %post, %include of files beside it, RHEL 5/6 sections without %end). Every command, \
            option and section the description does not carry over is named in a warning with its line. \
            Exits 1, writing nothing, unless the description passes kiln validate.
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
                String(decoding: data, as: UTF8.self), name: name.isEmpty ? "imported" : name,
                directory: (kickstart as NSString).deletingLastPathComponent)
        } catch {
            throw CommandFailure("\(kickstart): \(error.message)")
        }
        let warnings = result.warnings.map { "\(kickstart): \($0)" }
        let yaml = ApplianceWriter.yaml(result.appliance)
        let problems = problems(in: yaml)
        guard problems.isEmpty else {
            // A description that kiln validate refuses is not written: it would only move the error.
            throw CommandFailure(
                lines: problems.map { "kiln: error: \($0)" }
                    + ["kiln: error: \(kickstart): the imported description does not validate; nothing written"])
        }
        for warning in warnings { Console.standardError.write("kiln: warning: \(warning)") }
        try emit(yaml, to: output, json: progress.json, warnings: warnings)
    }

    /// What `kiln validate` says about the imported description: a hand-written kickstart may
    /// hold values a description refuses.
    private func problems(in yaml: String) -> [String] {
        let dir = NSTemporaryDirectory() + "kiln-import-\(UUID().uuidString)"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            return ["cannot check the imported description: \(error.localizedDescription)"]
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/imported.yaml"
        do {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            _ = try ApplianceLoader().load(path)
            return []
        } catch let error as ApplianceError {
            let shown = output ?? "the imported description"
            return error.diagnostics.map { "\(shown):\($0.mark.line):\($0.mark.column): \($0.message)" }
        } catch {
            return ["cannot check the imported description: \(error.localizedDescription)"]
        }
    }
}
