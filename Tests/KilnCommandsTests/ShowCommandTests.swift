import Foundation
import KilnTestSupport
import Testing

/// `kiln show`: the description as kiln builds it, and with --origin where each value came from.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"))
struct ShowCommandTests {
    @Test func showsTheMergedDescriptionAsALoadableDescription() throws {
        let (code, out, err) = try KilnProgram.run(
            ["show", "Appliances/debian-web.yaml"], cwd: KilnProgram.packageRoot)
        #expect(code == 0, "\(err)")
        // The parent's packages and the child's, the child's memory, the parent's cpus; variables substituted.
        for expected in ["- openssh-server", "- nginx", "memory: 2048", "cpus: 2", "www.example.org"] {
            #expect(out.contains(expected), "\(expected) missing:\n\(out)")
        }
        #expect(!out.contains("#SITE#"), "\(out)")
        #expect(!out.contains("appliances:"), "parents are merged in, not named:\n\(out)")
        // The root password only as its SHA-512 crypt hash.
        #expect(!out.contains("password: kiln"), "\(out)")
        #expect(out.contains("password_hash: \"$6$"), "\(out)")

        // What it prints is a description that stands on its own.
        let dir = NSTemporaryDirectory() + "kiln-show-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try out.write(toFile: dir + "/shown.yaml", atomically: true, encoding: .utf8)
        let (valid, _, validErr) = try KilnProgram.run(["validate", "shown.yaml"], cwd: dir)
        #expect(valid == 0, "\(validErr)")
        let (again, second, _) = try KilnProgram.run(["show", "shown.yaml"], cwd: dir)
        #expect(again == 0)
        let withoutHashes: (String) -> [Substring] = { $0.split(separator: "\n").filter { !$0.contains("$6$") } }
        #expect(withoutHashes(second) == withoutHashes(out), "showing the shown description changed it")
    }

    @Test func originNamesTheFileAndLineOfEachValue() throws {
        let (code, out, err) = try KilnProgram.run(
            ["show", "--origin", "Appliances/debian-web.yaml"], cwd: KilnProgram.packageRoot)
        #expect(code == 0, "\(err)")
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.contains("  memory: 2048  # Appliances/debian-web.yaml:11"), "\(out)")
        #expect(lines.contains("  cpus: 2  # Appliances/debian-minimal.yaml:14"), "\(out)")
        #expect(lines.contains("  name: debian  # Appliances/debian-minimal.yaml:7"), "\(out)")
        #expect(
            lines.contains("packages:  # Appliances/debian-web.yaml:21, Appliances/debian-minimal.yaml:22"), "\(out)")
        #expect(
            lines.contains { $0.hasPrefix("  password_hash: ") && $0.hasSuffix("# Appliances/debian-minimal.yaml:9") })
    }

    /// With --json: one result object holding the YAML and, with --origin, each key's FILE:LINE:COL list.
    @Test func jsonCarriesTheYAMLAndTheOrigins() throws {
        let (code, out, err) = try KilnProgram.run(
            ["show", "Appliances/debian-web.yaml", "--origin", "--json"], cwd: KilnProgram.packageRoot)
        #expect(code == 0, "\(err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "result")
        let (_, plain, _) = try KilnProgram.run(["show", "Appliances/debian-web.yaml"], cwd: KilnProgram.packageRoot)
        #expect((object["yaml"] as? String).map { $0.hasSuffix("\n") ? $0 : $0 + "\n" } == plain)
        let origins = try #require(object["origins"] as? [String: [String]])
        #expect(origins["hardware.cpus"] == ["Appliances/debian-minimal.yaml:14:3"], "\(origins)")
        #expect(origins["hardware.memory"]?.first == "Appliances/debian-web.yaml:11:3", "\(origins)")
    }
}
