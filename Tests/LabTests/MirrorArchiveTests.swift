import Foundation
import KilnSupport
import KilnTestSupport
import Logging
import NetBoot
import Packages
import Testing

@testable import Lab

enum HostArchive {
    /// The host's release as its apt sources name it (the first suite without a dash).
    static let codename: String? = {
        guard let sources = try? AptSources.load(), !sources.isEmpty else { return nil }
        return sources.map(\.suite).first { !$0.contains("-") }
    }()
}

/// The lab mirror made from the host's own apt sources (Debian 12 here), against real apt: the whole
/// suite's index, and a package the cache did not hold fetched into it on the first request.
@Suite(
    "lab mirror from the host's archive", .serialized,
    .requires(
        .program("apt-get"), .program("gpg"),
        .condition({ HostArchive.codename != nil }, "the host's Debian apt sources")))
struct MirrorArchiveTests {
    @Test func aptInstallsFromTheWholeSuite() async throws {
        let codename = try #require(HostArchive.codename)
        let folder = try TemporaryFolder()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        // Indexes come from the user's cache (they are verified there); packages go to a fresh one, so
        // that the first request has to fetch.
        let indexCache = PackageCache(root: KilnCache.root())
        let client = ArchiveClient(cache: indexCache)
        let suite = try await MirrorSuite.fromArchives(
            codename: codename, sources: try AptSources.load(), client: client)
        let main = try #require(suite.components.first { $0.name == "main" })
        #expect(main.packages.count > 10_000)
        #expect(main.installerPackages.contains { $0.name == "anna" })

        let packageCache = PackageCache(root: folder.path + "/cache")
        let key = try await MirrorSigningKey.loadOrCreate(in: folder.path + "/key")
        let mirror = try await LabMirror.publish(
            [suite], root: folder.path + "/mirror", key: key, cache: packageCache,
            client: ArchiveClient(cache: packageCache), logger: logger)
        try FileManager.default.createDirectory(atPath: folder.path + "/boot", withIntermediateDirectories: true)
        let server = try await HTTPBootServer.bind(
            host: "127.0.0.1", port: 0, root: BootRoot(folder.path + "/boot"), generated: mirror, logger: logger)
        let task = Task { try await server.run() }
        defer { task.cancel() }
        let base = "http://127.0.0.1:\(server.boundAddress.port)/debian"
        let sources = "deb [signed-by=\(key.keyringPath)] \(base) \(codename) main\n"
        let apt = folder.path + "/apt"
        let (updated, updateOutput) = try await MirrorAptTests.apt(apt, sources: sources, ["update"])
        #expect(updated, "\(updateOutput)")
        #expect(!updateOutput.contains("W:") && !updateOutput.contains("E:"), "\(updateOutput)")
        let (fetched, fetchOutput) = try await MirrorAptTests.apt(
            apt, sources: sources, ["install", "--download-only", "-y", "--no-install-recommends", "hello"])
        #expect(fetched, "\(fetchOutput)")
        #expect(!fetchOutput.lowercased().contains("authenticated"), "\(fetchOutput)")
        let hello = try #require(main.packages.first { $0.name == "hello" })
        #expect(packageCache.contains(.debs, sha256: hello.sha256))
        let downloaded = try FileManager.default.contentsOfDirectory(atPath: apt + "/cache/archives").filter {
            $0.hasPrefix("hello_")
        }
        #expect(downloaded.count == 1)
        if let name = downloaded.first {
            #expect(try await sha256(apt + "/cache/archives/" + name) == hello.sha256)
        }
    }
}
