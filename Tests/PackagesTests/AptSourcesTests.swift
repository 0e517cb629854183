import Foundation
import Testing

@testable import Packages

@Suite struct AptSourcesTests {
    @Test func deb822StanzasExpandToOneSourcePerSuite() throws {
        let text = """
            # the main archive
            Types: deb deb-src
            URIs: http://archive.example.org/debian/
            Suites: bookworm bookworm-updates
            Components: main contrib
            Signed-By: /usr/share/keyrings/example.gpg

            Types: deb-src
            URIs: http://archive.example.org/debian
            Suites: bookworm
            Components: main

            Types: deb
            URIs: http://security.example.org/debian-security
            Suites: bookworm-security
            Components: main
            Enabled: no

            types: deb
            uris: https://other.example.org/repo
            suites: stable
            components: main
            architectures: arm64
            """
        let sources = try AptSources.parseDeb822(text, origin: "test.sources")
        #expect(
            sources == [
                ArchiveSource(
                    uri: "http://archive.example.org/debian", suite: "bookworm", components: ["main", "contrib"],
                    keyring: "/usr/share/keyrings/example.gpg"),
                ArchiveSource(
                    uri: "http://archive.example.org/debian", suite: "bookworm-updates",
                    components: ["main", "contrib"], keyring: "/usr/share/keyrings/example.gpg"),
            ])
        #expect(sources[0].distsURL("InRelease") == "http://archive.example.org/debian/dists/bookworm/InRelease")
    }

    @Test func oneLineEntriesWithOptions() throws {
        let text = """
            deb http://archive.example.org/debian bookworm main non-free-firmware
            deb-src http://archive.example.org/debian bookworm main
            # deb http://commented.example.org/debian bookworm main
            deb [arch=amd64,i386 signed-by=/etc/apt/keyrings/example.gpg] http://ppa.example.org/x stable main # trailing
            deb [ arch=arm64 ] http://ports.example.org/debian bookworm main
            """
        let sources = try AptSources.parseOneLine(text, origin: "sources.list")
        #expect(
            sources == [
                ArchiveSource(
                    uri: "http://archive.example.org/debian", suite: "bookworm",
                    components: ["main", "non-free-firmware"]),
                ArchiveSource(
                    uri: "http://ppa.example.org/x", suite: "stable", components: ["main"],
                    keyring: "/etc/apt/keyrings/example.gpg"),
            ])
        #expect(sources[0].effectiveKeyring == ArchiveSource.defaultKeyring)
    }

    @Test func errorsNameFileAndLine() {
        #expect(throws: PackagesError(.sources, "s.list:2: expected a URI and a suite")) {
            try AptSources.parseOneLine("\ndeb http://archive.example.org/debian\n", origin: "s.list")
        }
        #expect(throws: PackagesError(.sources, "a.sources:3: the stanza has no Suites field")) {
            try AptSources.parseDeb822("\n\nTypes: deb\nURIs: http://archive.example.org/debian\n", origin: "a.sources")
        }
        #expect(throws: PackagesError(.sources, "l:1: flat repository './' is not supported")) {
            try AptSources.parseOneLine("deb http://archive.example.org/flat ./", origin: "l")
        }
    }

    @Test func loadReadsListThenPartsInOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-sources-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: "\(dir)/parts", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "deb http://a.example.org/debian bookworm main\n".write(
            toFile: "\(dir)/sources.list", atomically: true, encoding: .utf8)
        try "Types: deb\nURIs: http://c.example.org/debian\nSuites: trixie\nComponents: main\n".write(
            toFile: "\(dir)/parts/20-c.sources", atomically: true, encoding: .utf8)
        try "deb http://b.example.org/debian bookworm main\n".write(
            toFile: "\(dir)/parts/10-b.list", atomically: true, encoding: .utf8)
        try "deb http://ignored.example.org/debian bookworm main\n".write(
            toFile: "\(dir)/parts/30-x.list.disabled", atomically: true, encoding: .utf8)
        let sources = try AptSources.load(listFile: "\(dir)/sources.list", partsDirectory: "\(dir)/parts")
        #expect(
            sources.map(\.uri) == [
                "http://a.example.org/debian", "http://b.example.org/debian", "http://c.example.org/debian",
            ])
    }

    @Test func hostSuitesMoveToTheDescriptionsRelease() {
        let host = [
            ArchiveSource(uri: "http://archive.example.org/debian", suite: "bookworm", components: ["main"]),
            ArchiveSource(uri: "http://archive.example.org/debian", suite: "bookworm-updates", components: ["main"]),
            ArchiveSource(
                uri: "http://security.example.org/debian-security", suite: "bookworm-security", components: ["main"]),
            ArchiveSource(uri: "http://other.example.org/repo", suite: "stable", components: ["main"]),
        ]
        #expect(
            AptSources.retarget(host, to: "trixie").map(\.suite) == [
                "trixie", "trixie-updates", "trixie-security", "stable",
            ])
        #expect(AptSources.retarget(host, to: "bookworm") == host)
    }
}
