import Crypto
import Foundation
import KilnTestSupport
import Testing

@testable import Packages

@Suite struct ArchiveClientTests {
    static let packagesText = """
        Package: hello
        Version: 2.10-3
        Architecture: amd64
        Maintainer: Someone <someone@example.org>
        Installed-Size: 280
        Depends: libc6 (>= 2.34)
        Description: example package
         Longer description line.
         .
         Another paragraph.
        Filename: pool/main/h/hello/hello_2.10-3_amd64.deb
        Size: 52872
        SHA256: 0e84e10a6a1f2f6b2e3a1b7c2e7e0b1f8fcd5c2c5a4b4ab4a1f1d4e8c8c2e3a1
        Priority: optional

        Package: base-files
        Essential: yes
        Priority: required
        Version: 12.4+deb12u5
        Architecture: amd64
        Multi-Arch: foreign
        Pre-Depends: awk
        Provides: base
        Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3)
        Filename: pool/main/b/base-files/base-files_12.4+deb12u5_amd64.deb
        Size: 70764
        SHA256: 9ad4bd2a3b5c4e3f1f4de1b0e4a2c6b5f5a7d2e0c9d3d1a8f7e0c6f4e0b9a1c2

        """

    /// The index is parsed as the decompressor hands out its bytes, so a chunk may end anywhere:
    /// inside a field name, a value, a continuation line or between the two newlines of a stanza
    /// break. Every split must give the same packages.
    @Test(arguments: [Int.max, 1, 2, 7, 64])
    func packagesStanzasKeepTheResolverFields(chunkSize: Int) throws {
        let source = ArchiveSource(uri: "http://archive.example.org/debian", suite: "bookworm", components: ["main"])
        var parser = PackagesIndexParser(source: source, origin: "Packages")
        let bytes = Array(Self.packagesText.utf8)
        let size = min(chunkSize, bytes.count)
        for start in stride(from: 0, to: bytes.count, by: size) {
            let chunk = Array(bytes[start..<min(start + size, bytes.count)])
            try chunk.withUnsafeBytes { try parser.feed($0) }
        }
        let packages = try parser.finish()
        #expect(packages.map(\.name) == ["hello", "base-files"])
        #expect(packages[0].sha256 == "0e84e10a6a1f2f6b2e3a1b7c2e7e0b1f8fcd5c2c5a4b4ab4a1f1d4e8c8c2e3a1")
        #expect(packages[0].depends == "libc6 (>= 2.34)")
        #expect(packages[0].size == 52872)
        #expect(packages[0].url == "http://archive.example.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb")
        #expect(!packages[0].essential)
        #expect(packages[1].essential && packages[1].priority == "required" && packages[1].multiArch == "foreign")
        #expect(packages[1].version.description == "12.4+deb12u5")
        #expect(packages[1].breaks?.hasPrefix("debian-security-support") == true)
    }

    @Test func controlFileKeepsContinuationLines() throws {
        let stanzas = try ControlFile.parse(Self.packagesText, origin: "Packages")
        #expect(stanzas.count == 2)
        #expect(stanzas[1].line == 16)
        #expect(stanzas[0]["description"] == "example package\nLonger description line.\n.\nAnother paragraph.")
        #expect(throws: PackagesError(.format, "x:2: expected 'Field: value'")) {
            try ControlFile.parse("A: b\nno colon here\n", origin: "x")
        }
    }

    @Test func releaseListsDigestsAndRejectsExpiry() throws {
        let source = ArchiveSource(uri: "http://archive.example.org/debian", suite: "bookworm", components: ["main"])
        let text = """
            Origin: Example
            Codename: bookworm
            Date: Sat, 11 Jul 2026 10:16:37 UTC
            Valid-Until: Sat, 18 Jul 2026 10:16:37 UTC
            SHA256:
             9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz
             515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f 50060337 main/binary-amd64/Packages
            """
        let before = try #require(Release.parseDate("Wed, 15 Jul 2026 00:00:00 UTC"))
        let release = try Release(signedText: text, source: source, inReleaseSHA256: "x", now: before)
        #expect(release.codename == "bookworm")
        #expect(release.files["main/binary-amd64/Packages.xz"]?.size == 8_790_396)
        #expect(release.files.count == 2)
        let after = try #require(Release.parseDate("Sun, 19 Jul 2026 00:00:00 UTC"))
        #expect(throws: PackagesError.self) {
            try Release(signedText: text, source: source, inReleaseSHA256: "x", now: after)
        }
    }

    /// A local `file:` archive whose Packages.xz is made by the xz program: the client must fetch it
    /// into the cache, check it against the Release, decompress it and parse it; a Release that
    /// states another digest must be refused.
    @Test(.requires(TestSupport.hasProgram("xz"), "xz (xz-utils)"))
    func localArchiveIndexIsVerifiedAndDecompressed() async throws {
        let dir = try TestSupport.scratch("archive")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let indexDir = "\(dir)/repo/dists/stable/main/binary-amd64"
        try FileManager.default.createDirectory(atPath: indexDir, withIntermediateDirectories: true)
        try Self.packagesText.write(toFile: "\(indexDir)/Packages", atomically: true, encoding: .utf8)
        let (status, _) = try await TestSupport.run(["xz", "-k", "\(indexDir)/Packages"])
        #expect(status == 0)
        let xz = try Data(contentsOf: URL(fileURLWithPath: "\(indexDir)/Packages.xz"))
        let source = ArchiveSource(uri: "file://\(dir)/repo", suite: "stable", components: ["main"])

        func release(sha256: String) throws -> Release {
            let text =
                "Date: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n \(sha256) \(xz.count) main/binary-amd64/Packages.xz\n"
            return try Release(signedText: text, source: source, inReleaseSHA256: "x")
        }
        let client = ArchiveClient(cache: PackageCache(root: "\(dir)/cache"))
        let good = SHA256.hash(data: xz).hex
        let packages = try await client.packages(try release(sha256: good))
        #expect(packages.map(\.name) == ["hello", "base-files"])
        #expect(FileManager.default.fileExists(atPath: "\(dir)/cache/indexes/sha256/\(good)"))

        let wrong = String(repeating: "0", count: 64)
        await #expect(throws: PackagesError.self) { try await client.packages(try release(sha256: wrong)) }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/cache/indexes/sha256/\(wrong)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/cache/indexes/sha256") == [good])
    }

    /// An archive caught mid-update: its `Packages.xz` is already the next one, which the Release the
    /// client read does not sign, but with `Acquire-By-Hash: yes` the signed index is still under
    /// `by-hash/SHA256/`, and the client reads that one; without by-hash it refuses the new bytes.
    @Test(.requires(TestSupport.hasProgram("xz"), "xz (xz-utils)"))
    func anIndexIsTakenByItsHashWhenTheArchiveOffersIt() async throws {
        let dir = try TestSupport.scratch("by-hash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let indexDir = "\(dir)/repo/dists/stable/main/binary-amd64"
        try FileManager.default.createDirectory(atPath: "\(indexDir)/by-hash/SHA256", withIntermediateDirectories: true)
        try Self.packagesText.write(toFile: "\(indexDir)/Packages", atomically: true, encoding: .utf8)
        let (status, _) = try await TestSupport.run(["xz", "-k", "\(indexDir)/Packages"])
        #expect(status == 0)
        let signed = try Data(contentsOf: URL(fileURLWithPath: "\(indexDir)/Packages.xz"))
        let digest = SHA256.hash(data: signed).hex
        try FileManager.default.moveItem(
            atPath: "\(indexDir)/Packages.xz", toPath: "\(indexDir)/by-hash/SHA256/\(digest)")
        try Data("the next index, not yet signed".utf8).write(to: URL(fileURLWithPath: "\(indexDir)/Packages.xz"))
        let source = ArchiveSource(uri: "file://\(dir)/repo", suite: "stable", components: ["main"])
        func release(byHash: Bool) throws -> Release {
            let text =
                "Date: Sat, 11 Jul 2026 10:16:37 UTC\n" + (byHash ? "Acquire-By-Hash: yes\n" : "")
                + "SHA256:\n \(digest) \(signed.count) main/binary-amd64/Packages.xz\n"
            return try Release(signedText: text, source: source, inReleaseSHA256: "x")
        }
        #expect(
            try release(byHash: true).byHashURL("main/binary-amd64/Packages.xz")
                == "file://\(dir)/repo/dists/stable/main/binary-amd64/by-hash/SHA256/\(digest)")
        let refused = ArchiveClient(cache: PackageCache(root: "\(dir)/cache-by-name"))
        await #expect(throws: PackagesError.self) { try await refused.packages(try release(byHash: false)) }
        let client = ArchiveClient(cache: PackageCache(root: "\(dir)/cache"))
        let packages = try await client.packages(try release(byHash: true))
        #expect(packages.map(\.name) == ["hello", "base-files"])
    }

    /// The real archive named by the host's apt sources: gpgv accepts its InRelease, refuses a
    /// tampered copy, and the indexes hold the packages every Debian system has.
    @Test(.requires(TestSupport.archiveReachable, "the host's apt sources, gpgv and debian-archive-keyring"))
    func hostArchiveIsSignedAndIndexed() async throws {
        let index = try await TestSupport.hostIndex.value
        #expect(index.releases.count == TestSupport.hostSources.count)
        for release in index.releases {
            #expect(Release.parseDate(release.date) != nil)
            #expect(!release.files.isEmpty)
        }
        let dpkg = try #require(index.candidate("dpkg"))
        #expect(dpkg.essential)
        #expect(dpkg.sha256.count == 64)
        #expect(dpkg.filename.hasPrefix("pool/"))
        #expect(index.providers["awk"]?.isEmpty == false)
        #expect(index.count > 10_000)

        let source = TestSupport.hostSources[0]
        let signed = try await HTTPFetcher().data(source.distsURL("InRelease"))
        var tampered = signed
        let at = try #require(tampered.range(of: Data("Date: ".utf8))).upperBound
        tampered[at] = tampered[at] == UInt8(ascii: "M") ? UInt8(ascii: "T") : UInt8(ascii: "M")
        await #expect(throws: PackagesError.self) {
            try await ArchiveClient.verify(tampered, keyring: source.effectiveKeyring, origin: "tampered")
        }
    }
}
