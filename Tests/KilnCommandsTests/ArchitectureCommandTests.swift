import Foundation
import KilnTestSupport
import Testing

/// `--arch` as a user meets it before anything is downloaded: what an arm64 image cannot be, and
/// the emulator it needs.
@Suite(.requires(.kilnBinary))
struct ArchitectureCommandTests {
    private func description() throws -> (String, String) {
        let dir = NSTemporaryDirectory() + "kiln-arch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/small.yaml"
        try "name: small\nos:\n  name: debian\n  version: \"12\"\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        return (dir, path)
    }

    @Test func x86OnlyPlatformsAndFormatsAreRefusedForAarch64() throws {
        let (dir, path) = try description()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (platformCode, _, platformErr) = try KilnProgram.run(
            ["build", path, "--arch", "aarch64", "--platform", "hyperv", "-o", "\(dir)/out"])
        #expect(platformCode == 1)
        #expect(
            platformErr.contains("--platform hyperv builds for x86_64 hypervisors; small is aarch64"), "\(platformErr)")
        let (formatCode, _, formatErr) = try KilnProgram.run(
            ["build", path, "--arch", "aarch64", "--format", "qcow2,vdi", "-o", "\(dir)/out"])
        #expect(formatCode == 1)
        #expect(formatErr.contains("--format vdi is for x86_64 machines"), "\(formatErr)")
        let (unknownCode, _, unknownErr) = try KilnProgram.run(["build", path, "--arch", "arm64"])
        #expect(unknownCode == 2, "\(unknownErr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out"))
        #expect(!FileManager.default.fileExists(atPath: "\(path).lock"))
    }

    @Test func aMissingEmulatorNamesTheDebianPackage() throws {
        let (dir, path) = try description()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A PATH without QEMU, as on a host where qemu-system-arm is not installed.
        let (code, _, text) = try KilnProgram.run(
            ["build", path, "--arch", "aarch64", "-o", "\(dir)/out"], environment: ["PATH": dir, "HOME": dir])
        #expect(code == 1)
        #expect(text.contains("qemu-system-aarch64 is not installed"), "\(text)")
        #expect(text.contains("install Debian's qemu-system-arm package"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: "\(path).lock"))
    }
}
