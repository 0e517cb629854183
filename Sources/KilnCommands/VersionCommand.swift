import Appliance
import ArgumentParser
import DiskImage
import Foundation
import KilnArchive
import KilnSupport

struct VersionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print kiln's version, the commit it was built from, and the versions of its libraries.",
        discussion: """
            The commit is the one `make install` recorded beside the binary or, for a binary in a \
            checkout, the checkout's (with '-dirty' when it has changes). The Swift packages' versions are \
            those kiln was built with (Package.resolved); the C libraries' are the ones loaded now.
            """
    )

    @OptionGroup var progress: ProgressOptions

    /// kiln's own version.
    static let version = "0.1.0"

    /// The Swift packages kiln is built with, as Package.resolved pins them (a test keeps them equal).
    static let swiftPackages: [(String, String)] = [
        ("swift-argument-parser", "1.8.2"),
        ("swift-crypto", "3.12.3"),
        ("swift-log", "1.16.2"),
        ("swift-nio", "2.101.3"),
        ("yams", "6.2.2"),
    ]

    func run() async throws {
        let commit = Self.commit() ?? "unknown"
        let libraries: [(String, String)] =
            Self.swiftPackages + [
                ("libarchive", LibarchiveVersion.text), ("zlib", ZlibVersion.text), ("libyaml", LibyamlVersion.text),
            ]
        if progress.json {
            progress.console().result(
                Result(
                    version: Self.version, commit: commit,
                    libraries: Dictionary(uniqueKeysWithValues: libraries.map { ($0.0, $0.1) })))
            return
        }
        print("kiln \(Self.version)")
        print("commit: \(commit)")
        for (name, version) in libraries { print("\(name): \(version)") }
    }

    /// `PREFIX/share/kiln/commit` beside an installed binary, else the checkout this file was built from.
    static func commit() -> String? {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let recorded = executable.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("share/kiln/commit").path
        if let text = try? String(contentsOfFile: recorded, encoding: .utf8) {
            let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !line.isEmpty { return line }
        }
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: checkout + "/.git") else { return nil }
        let git = Subprocess(["git", "-C", checkout, "describe", "--always", "--dirty", "--abbrev=12"], output: .pipe)
        guard (try? git.start()) != nil, let out = git.outputHandle else { return nil }
        let data = out.readDataToEndOfFile()
        guard git.waitBlocking().succeeded else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// `kiln version --json`'s result: kiln's version and commit, and the C libraries it runs with.
    struct Result: Encodable {
        let version: String
        let commit: String
        let libraries: [String: String]
    }
}
