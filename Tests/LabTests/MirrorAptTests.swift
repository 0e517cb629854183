import Foundation
import KilnSupport
import KilnTestSupport
import Logging
import NIOPosix
import NetBoot
import Packages
import Testing

@testable import Lab

/// The lab mirror against real apt, gpgv and cpio: apt trusts it only with kiln's key, downloads
/// verified packages from it, and the installer's check (gpgv on Release.gpg) passes.
@Suite(
    "lab mirror", .serialized,
    .requires(
        .program("apt-get"), .program("gpg"), .program("gpgv"), .program("dpkg-deb"), .program("gzip"),
        .program("cpio")))
struct MirrorAptTests {
    /// A tiny archive: two packages built with dpkg-deb, one depending on the other, in a kiln cache.
    struct Fixture {
        let folder: TemporaryFolder
        let cache: PackageCache
        let suite: MirrorSuite
        let debs: [String: String]
    }

    static func makeFixture() async throws -> Fixture {
        let folder = try TemporaryFolder()
        let cache = PackageCache(root: folder.path + "/cache")
        var packages: [MirrorPackage] = []
        var debs: [String: String] = [:]
        for (name, depends) in [("kiln-hello", "kiln-world"), ("kiln-world", nil)] {
            let tree = folder.path + "/build/\(name)"
            try FileManager.default.createDirectory(atPath: tree + "/DEBIAN", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(
                atPath: tree + "/usr/share/\(name)", withIntermediateDirectories: true)
            try Data("hello from \(name)\n".utf8).write(to: URL(fileURLWithPath: tree + "/usr/share/\(name)/greeting"))
            var control = """
                Package: \(name)
                Version: 1.0-1
                Architecture: all
                Maintainer: kiln tests <tests@localhost>
                Priority: optional
                Section: misc
                Description: a package of the lab mirror's tests
                 It carries one file.

                """
            if let depends {
                control = control.replacingOccurrences(of: "Priority:", with: "Depends: \(depends)\nPriority:")
            }
            try Data(control.utf8).write(to: URL(fileURLWithPath: tree + "/DEBIAN/control"))
            let deb = folder.path + "/\(name)_1.0-1_all.deb"
            let (built, said) = try await runTool(["dpkg-deb", "--root-owner-group", "--build", tree, deb])
            try #require(built.succeeded, "\(said)")
            let digest = try await sha256(deb)
            let size = try #require(LabMirror.fileSize(deb))
            try FileManager.default.createDirectory(
                atPath: cache.root + "/debs/sha256", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: deb, toPath: cache.path(.debs, sha256: digest))
            let filename = "pool/main/k/\(name)/\(name)_1.0-1_all.deb"
            let stanza =
                control.trimmingCharacters(in: .newlines) + "\nFilename: \(filename)\nSize: \(size)\nSHA256: \(digest)"
            packages.append(
                MirrorPackage(
                    name: name, filename: filename, size: size, sha256: digest, url: nil, stanza: Array(stanza.utf8)))
            debs[name] = deb
        }
        let suite = MirrorSuite(codename: "bookworm", components: [.init(name: "main", packages: packages)])
        return Fixture(folder: folder, cache: cache, suite: suite, debs: debs)
    }

    /// Serves the mirror on loopback for `body`.
    static func serving(
        _ fixture: Fixture, _ body: (_ base: String, _ mirror: LabMirror) async throws -> Void
    ) async throws {
        let key = try await MirrorSigningKey.loadOrCreate(in: fixture.folder.path + "/key")
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let mirror = try await LabMirror.publish(
            [fixture.suite], root: fixture.folder.path + "/mirror", key: key, cache: fixture.cache, client: nil,
            logger: logger)
        try FileManager.default.createDirectory(
            atPath: fixture.folder.path + "/boot", withIntermediateDirectories: true)
        let server = try await HTTPBootServer.bind(
            host: "127.0.0.1", port: 0, root: BootRoot(fixture.folder.path + "/boot"), generated: mirror,
            logger: logger)
        let task = Task { try await server.run() }
        defer { task.cancel() }
        try await body("http://127.0.0.1:\(server.boundAddress.port)/debian", mirror)
    }

    /// apt confined to `dir`: its own sources, keys, lists, cache and dpkg status.
    static func apt(_ dir: String, sources: String, _ arguments: [String]) async throws -> (Bool, String) {
        for sub in [
            "etc/apt.conf.d", "etc/preferences.d", "etc/trusted.gpg.d", "etc/sources.list.d", "state/lists/partial",
            "cache/archives/partial", "log", "download",
        ] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        if !FileManager.default.fileExists(atPath: "\(dir)/state/status") {
            _ = FileManager.default.createFile(atPath: "\(dir)/state/status", contents: Data())
        }
        try Data(sources.utf8).write(to: URL(fileURLWithPath: "\(dir)/etc/sources.list"))
        var options = [
            "Dir=\(dir)/", "Dir::Etc=\(dir)/etc/", "Dir::Etc::Parts=\(dir)/etc/apt.conf.d/",
            "Dir::State=\(dir)/state/", "Dir::State::status=\(dir)/state/status", "Dir::Cache=\(dir)/cache/",
            "Dir::Log=\(dir)/log/", "Debug::NoLocking=true", "Acquire::Languages=none", "APT::Architecture=amd64",
            "APT::Architectures=amd64",
        ]
        // apt drops to the _apt user for downloads; that user cannot write a test's temporary folder.
        if getuid() == 0 { options.append("APT::Sandbox::User=root") }
        var argv = ["apt-get", "-q"]
        for option in options { argv += ["-o", option] }
        let (status, output) = try await Subprocess.output(
            ["timeout", "-k", "5", "120", "sh", "-c", "cd \"$0\" && exec \"$@\"", "\(dir)/download"] + argv + arguments)
        return (status.succeeded, output)
    }

    @Test func aptTrustsTheMirrorOnlyWithKilnsKey() async throws {
        let fixture = try await Self.makeFixture()
        try await Self.serving(fixture) { base, mirror in
            let keyring = mirror.key.keyringPath
            // Kept private: the key folder and the GnuPG home are 0700.
            let mode = try FileManager.default.attributesOfItem(atPath: mirror.key.home)[.posixPermissions] as? Int
            #expect(mode == 0o700)

            let trusted = fixture.folder.path + "/apt-trusted"
            let sources = "deb [signed-by=\(keyring)] \(base) bookworm main\n"
            let (updated, updateOutput) = try await Self.apt(trusted, sources: sources, ["update"])
            #expect(updated, "\(updateOutput)")
            #expect(!updateOutput.contains("W:") && !updateOutput.contains("E:"), "\(updateOutput)")

            let (fetched, fetchOutput) = try await Self.apt(
                trusted, sources: sources, ["install", "--download-only", "-y", "kiln-hello"])
            #expect(fetched, "\(fetchOutput)")
            #expect(!fetchOutput.lowercased().contains("authenticated"), "\(fetchOutput)")
            for name in ["kiln-hello", "kiln-world"] {
                let downloaded = "\(trusted)/cache/archives/\(name)_1.0-1_all.deb"
                #expect(try await sha256(downloaded) == (try await sha256(try #require(fixture.debs[name]))))
            }
            let (single, singleOutput) = try await Self.apt(trusted, sources: sources, ["download", "kiln-world"])
            #expect(single, "\(singleOutput)")
            #expect(FileManager.default.fileExists(atPath: "\(trusted)/download/kiln-world_1.0-1_all.deb"))

            // Without kiln's key the same mirror is refused: the signature is what apt trusts.
            let untrusted = fixture.folder.path + "/apt-untrusted"
            let (refused, refusedOutput) = try await Self.apt(
                untrusted, sources: "deb \(base) bookworm main\n", ["update"])
            #expect(!refused, "\(refusedOutput)")
            #expect(refusedOutput.contains("NO_PUBKEY") || refusedOutput.contains("not signed"), "\(refusedOutput)")
            let (noList, _) = try await Self.apt(
                untrusted, sources: "deb \(base) bookworm main\n", ["download", "kiln-world"])
            #expect(!noList)
        }
    }

    @Test func theInstallersCheckPasses() async throws {
        let fixture = try await Self.makeFixture()
        try await Self.serving(fixture) { base, mirror in
            let out = fixture.folder.path + "/fetched"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for name in ["Release", "Release.gpg", "InRelease"] {
                let (got, said) = try await runTool([
                    "curl", "-sSf", "-o", "\(out)/\(name)", "\(base)/dists/bookworm/\(name)",
                ])
                try #require(got.succeeded, "\(said)")
            }
            // What net-retriever and debootstrap run, with kiln's key as the installer's archive.gpg.
            let (detached, detachedOutput) = try await runTool(
                ["gpgv", "--keyring", mirror.key.keyringPath, "\(out)/Release.gpg", "\(out)/Release"])
            #expect(detached.succeeded, "\(detachedOutput)")
            let (clear, clearOutput) = try await runTool([
                "gpgv", "--keyring", mirror.key.keyringPath, "\(out)/InRelease",
            ])
            #expect(clear.succeeded, "\(clearOutput)")
            // Debian's own keyring does not accept it.
            if Requirement.available(.file(ArchiveSource.defaultKeyring)) {
                let (foreign, _) = try await runTool(
                    ["gpgv", "--keyring", ArchiveSource.defaultKeyring, "\(out)/Release.gpg", "\(out)/Release"])
                #expect(!foreign.succeeded)
            }
            // Each index the Release lists has the size and SHA-256 it says, the installer's index included.
            let release = try String(contentsOfFile: "\(out)/Release", encoding: .utf8)
            #expect(release.contains("Codename: bookworm"))
            let listed = release.split(separator: "\n").filter { $0.hasPrefix(" ") }.map { $0.split(separator: " ") }
            #expect(listed.contains { $0.last == "main/debian-installer/binary-amd64/Packages.gz" })
            for entry in listed {
                let (got, said) = try await runTool([
                    "curl", "-sSf", "-o", "\(out)/index", "\(base)/dists/bookworm/\(entry[2])",
                ])
                try #require(got.succeeded, "\(entry[2]): \(said)")
                #expect(try await sha256("\(out)/index") == String(entry[0]), "\(entry[2])")
                #expect(LabMirror.fileSize("\(out)/index") == Int64(entry[1]), "\(entry[2])")
            }
            // A pool path the indexes do not list, and one whose file the cache lacks, are not served.
            let (_, missing) = try await runTool(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/pool/main/n/nothing_1_all.deb"])
            #expect(missing == "404")
        }
    }

    @Test func theOverlayCarriesTheKeyAndTheHook() async throws {
        let folder = try TemporaryFolder()
        let keyring: [UInt8] = Array("not really a key".utf8)
        let overlay = try InstallerOverlay.make(keyring: keyring, preseed: "d-i debian-installer/locale string C\n")
        let path = folder.path + "/overlay.cpio.gz"
        try Data(overlay).write(to: URL(fileURLWithPath: path))
        let (listed, listing) = try await runTool(["sh", "-c", "zcat \"$0\" | cpio -t --quiet", path])
        #expect(listed.succeeded, "\(listing)")
        let names = Set(listing.split(separator: "\n").map(String.init))
        #expect(
            names.isSuperset(of: [
                "usr/share/keyrings/archive.gpg", "usr/lib/base-installer.d/05kiln-lab-mirror", "preseed.cfg",
            ]))
        let unpacked = folder.path + "/root"
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        let (extracted, said) = try await runTool([
            "sh", "-c", "cd \"$1\" && zcat \"$0\" | cpio -id --quiet", path, unpacked,
        ])
        #expect(extracted.succeeded, "\(said)")
        #expect(FileManager.default.contents(atPath: unpacked + "/usr/share/keyrings/archive.gpg") == Data(keyring))
        #expect(FileManager.default.isExecutableFile(atPath: unpacked + "/usr/lib/base-installer.d/05kiln-lab-mirror"))
        let (checked, shOutput) = try await runTool([
            "sh", "-n", unpacked + "/usr/lib/base-installer.d/05kiln-lab-mirror",
        ])
        #expect(checked.succeeded, "\(shOutput)")
    }
}
