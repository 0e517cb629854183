import Foundation
import KilnTestSupport
import Testing

/// `kiln validate Appliances/*` after a build: the lockfile beside a description is a lockfile.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"))
struct ValidateLockfileTests {
    private static let digest = String(repeating: "ab", count: 32)
    private static let lockfile = """
        {
          "architecture" : "amd64",
          "archives" : [],
          "base" : "minbase",
          "format" : 1,
          "packages" : [
            {
              "architecture" : "amd64",
              "filename" : "pool/main/h/hello/hello_2.10-3_amd64.deb",
              "name" : "hello",
              "sha256" : "\(digest)",
              "size" : 53000,
              "suite" : "bookworm",
              "uri" : "http://archive.example.invalid/debian",
              "version" : "2.10-3"
            }
          ],
          "requested" : ["hello"]
        }

        """

    private func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "kiln-validate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/apt", withIntermediateDirectories: true)
        try "deb http://archive.example.invalid/debian bookworm main\n"
            .write(toFile: dir + "/apt/sources.list", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(
            atPath: KilnProgram.packageRoot + "/Appliances/debian-minimal.yaml", toPath: dir + "/debian-minimal.yaml")
        return dir
    }

    @Test func lockfileBesideItsDescriptionIsCheckedAsALockfile() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lockfile.write(toFile: dir + "/debian-minimal.yaml.lock", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(
            ["validate", "--apt-sources", "apt", "debian-minimal.yaml", "debian-minimal.yaml.lock"], cwd: dir)
        #expect(code == 0, "\(err)")
        #expect(out == "debian-minimal.yaml: ok\ndebian-minimal.yaml.lock: ok (kiln lockfile: 1 packages)\n")
        #expect(!err.contains("error"), "\(err)")
        // It locks `hello` only, not what the description asks for: a note says so.
        #expect(err.contains("debian-minimal.yaml.lock: note: it no longer answers debian-minimal.yaml"), "\(err)")
    }

    @Test func lockfileUnderAnotherNameIsToldByItsContent() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lockfile.write(toFile: dir + "/pinned.json", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(["validate", "pinned.json"], cwd: dir)
        #expect(code == 0, "\(err)")
        #expect(out == "pinned.json: ok (kiln lockfile: 1 packages)\n")
    }

    @Test func brokenLockfileIsOneLockfileError() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var broken = Self.lockfile.replacingOccurrences(of: "\"format\" : 1,", with: "")
        broken = broken.replacingOccurrences(of: Self.digest, with: "abc")
        try broken.write(toFile: dir + "/debian-minimal.yaml.lock", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(["validate", "debian-minimal.yaml.lock"], cwd: dir)
        #expect(code == 1)
        #expect(out.isEmpty)
        let lines = err.split(separator: "\n")
        #expect(lines.count == 1, "\(err)")
        #expect(err.hasPrefix("debian-minimal.yaml.lock: error: not a kiln lockfile"), "\(err)")
    }
}
