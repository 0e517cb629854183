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

    @Option(name: .short, help: "Output file (default: standard output).")
    var output: String?

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
        for warning in result.warnings { Console.standardError.write("kiln: warning: \(kickstart): \(warning)") }
        let yaml = ApplianceWriter.yaml(result.appliance)
        for problem in problems(in: yaml) { Console.standardError.write("kiln: warning: \(problem)") }
        try emit(yaml, to: output)
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
