import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import BuildVM
@testable import Builder

/// Every shell script kiln runs in a guest, checked by shellcheck as busybox's `sh` (POSIX sh) reads
/// it: the install script, the builder guest's `/init` and helpers, the deploy agent's. Findings of
/// severity warning or worse fail; shellcheck's infos and style notes do not.
@Suite(.requires(.program("shellcheck")))
struct GuestScriptLintTests {
    static let scripts: [(String, String)] = [
        ("install.sh", InstallScript.text),
        ("builder-init", GuestScripts.initScript),
        ("extents.sh", GuestScripts.extentScript),
        ("event.sh", GuestScripts.eventScript),
        ("agent-init", DeployAgentScripts.initScript),
        ("agent-dhcp.sh", DeployAgentScripts.dhcpScript),
    ]

    @Test(arguments: scripts.map(\.0))
    func scriptIsCleanUnderShellcheck(_ name: String) async throws {
        let text = try #require(Self.scripts.first { $0.0 == name }?.1)
        let dir = NSTemporaryDirectory() + "kiln-shellcheck-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (ended, report) = try await Subprocess.output(["shellcheck", "--shell=sh", "--severity=warning", path])
        #expect(ended.succeeded, "\(name):\n\(report)")
    }
}
