import Foundation
import KilnTestSupport
import NetBoot
import Packages
import Testing

@testable import Lab

/// An archive whose installer index no longer matches its signed Release (what the host's archive
/// serves for trixie here: the InRelease names a 53936-byte `debian-installer/.../Packages.xz`, the
/// file is 54284 bytes and there is no by-hash copy). The lab mirror still lists the suite's packages
/// and names the installer index it left out; a `.deb` index that does not match still fails it.
@Suite(.requires(.program("gpg"), .program("gpgv"), .program("xz")))
struct MirrorInconsistentArchiveTests {
    static let stanza = """
        Package: hello
        Version: 2.10-3
        Architecture: amd64
        Filename: pool/main/h/hello/hello_2.10-3_amd64.deb
        Size: 52872
        SHA256: 0e84e10a6a1f2f6b2e3a1b7c2e7e0b1f8fcd5c2c5a4b4ab4a1f1d4e8c8c2e3a1

        """

    /// Writes `text` as `Packages.xz` under `dists/stable/<middle>` and returns its Release line.
    static func index(_ text: String, repo: String, middle: String) async throws -> String {
        let folder = "\(repo)/dists/stable/\(middle)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try text.write(toFile: "\(folder)/Packages", atomically: true, encoding: .utf8)
        let (status, output) = try await runTool(["xz", "-f", "\(folder)/Packages"])
        #expect(status.succeeded, "\(output)")
        let size = try FileManager.default.attributesOfItem(atPath: "\(folder)/Packages.xz")[.size] as? Int ?? -1
        return " \(try await sha256("\(folder)/Packages.xz")) \(size) \(middle)/Packages.xz\n"
    }

    /// A signed `stable` suite with one `.deb` and one installer index; then the file at `replaced`
    /// (relative to `dists/stable/`) is swapped for bytes the Release does not sign.
    static func archive(in dir: String, replacing replaced: String) async throws -> ArchiveSource {
        let repo = "\(dir)/repo"
        var release = "Origin: test\nCodename: stable\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n"
        release += try await index(stanza, repo: repo, middle: "main/binary-amd64")
        release += try await index(
            stanza.replacingOccurrences(of: "hello", with: "anna").replacingOccurrences(of: ".deb", with: ".udeb"),
            repo: repo, middle: "main/debian-installer/binary-amd64")
        let key = try await MirrorSigningKey.loadOrCreate(in: "\(dir)/key")
        try await key.sign(
            Array(release.utf8), clearSigned: "\(repo)/dists/stable/InRelease",
            detached: "\(repo)/dists/stable/Release.gpg")
        try Data("the next index, not yet signed".utf8).write(
            to: URL(fileURLWithPath: "\(repo)/dists/stable/\(replaced)"))
        return ArchiveSource(uri: "file://\(repo)", suite: "stable", components: ["main"], keyring: key.keyringPath)
    }

    @Test func anInstallerIndexThatDoesNotMatchIsLeftOutAndNamed() async throws {
        let folder = try TemporaryFolder()
        let dir = folder.path
        let source = try await Self.archive(
            in: dir, replacing: "main/debian-installer/binary-amd64/Packages.xz")
        let client = ArchiveClient(cache: PackageCache(root: "\(dir)/cache"))
        let suite = try await MirrorSuite.fromArchives(codename: "stable", sources: [source], client: client)
        let main = try #require(suite.components.first { $0.name == "main" })
        #expect(main.packages.map(\.name) == ["hello"])
        #expect(main.installerPackages.isEmpty)
        #expect(suite.leftOut.count == 1)
        #expect(suite.leftOut.first?.contains("installer index does not match the signed Release") == true)
        #expect(suite.leftOut.first?.contains("file://\(dir)/repo stable main") == true)
    }

    @Test func aPackagesIndexThatDoesNotMatchFailsTheMirror() async throws {
        let folder = try TemporaryFolder()
        let dir = folder.path
        let source = try await Self.archive(in: dir, replacing: "main/binary-amd64/Packages.xz")
        let client = ArchiveClient(cache: PackageCache(root: "\(dir)/cache"))
        await #expect(throws: NetBootError.self) {
            _ = try await MirrorSuite.fromArchives(codename: "stable", sources: [source], client: client)
        }
    }
}
