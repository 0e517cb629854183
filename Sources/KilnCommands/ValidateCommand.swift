import Appliance
import ArgumentParser
import Builder
import Foundation
import KilnSupport
import Packages

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check appliance descriptions and report every error as FILE:LINE:COL.",
        discussion: """
            Prints 'FILE: ok' for each good description; exits 1 if any has an error. A kiln lockfile \
            (FILE.lock, which `kiln lock` and `kiln build` write beside a description) is checked as a \
            lockfile, not read as a description, so that `kiln validate Appliances/*` works after a build; \
            a note says when it no longer answers the description beside it.
            """
    )

    @Argument(help: "Description files (.yaml or BoxGrinder .appl); kiln lockfiles are checked as lockfiles.")
    var files: [String]

    @OptionGroup var progress: ProgressOptions

    /// Where the host's apt sources are read from, to tell whether a lockfile answers its description.
    @Option(name: .customLong("apt-sources"), help: .hidden)
    var aptSources = "/etc/apt"

    func run() async throws {
        var lines: [String] = []
        var results: [Result.File] = []
        for file in files {
            if Self.isLockfile(file) {
                let errors = checkLockfile(file)
                lines += errors
                results.append(
                    .init(
                        file: file, kind: "lockfile", ok: errors.isEmpty,
                        errors: errors.map { .init(file: file, message: $0) }))
                continue
            }
            do {
                let (_, warnings) = try ApplianceLoader.forCommands.loadWithWarnings(file)
                for warning in warnings { Console.standardError.write(warning.description) }
                if !progress.json { print("\(file): ok") }
                results.append(
                    .init(
                        file: file, kind: "description", ok: true, errors: [],
                        warnings: warnings.map(\.description)))
            } catch {
                lines += (error.warnings + error.diagnostics).map(\.description)
                results.append(
                    .init(
                        file: file, kind: "description", ok: false,
                        errors: error.diagnostics.map {
                            .init(file: $0.mark.file, line: $0.mark.line, column: $0.mark.column, message: $0.message)
                        }))
            }
        }
        progress.console().result(Result(files: results, ok: lines.isEmpty))
        if !lines.isEmpty { throw CommandFailure(lines: lines) }
    }

    /// A file named `*.lock`, or a JSON object with a lockfile's own keys.
    static func isLockfile(_ path: String) -> Bool {
        if path.hasSuffix(".lock") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        guard head.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else { return false }
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return ["format", "archives", "packages", "requested"].allSatisfy { object[$0] != nil }
    }

    /// Reads the lockfile as `kiln build --locked` would; prints `FILE: ok (...)` or returns its error.
    private func checkLockfile(_ path: String) -> [String] {
        let lockfile: Lockfile
        do {
            lockfile = try Lockfile.read(path)
        } catch {
            var text = error.description
            if text.hasPrefix("\(path): ") { text.removeFirst(path.count + 2) }
            return ["\(path): error: \(text)"]
        }
        if !progress.json { print("\(path): ok (kiln lockfile: \(lockfile.packages.count) packages)") }
        if let note = staleNote(lockfile, path: path) { Console.standardError.write("\(path): note: \(note)") }
        return []
    }

    /// Whether the description beside the lockfile (FILE for FILE.lock) still asks for what it locks,
    /// for a plain build or any platform's; nil when it does, or when there is no such description.
    private func staleNote(_ lockfile: Lockfile, path: String) -> String? {
        guard path.hasSuffix(".lock") else { return nil }
        let description = String(path.dropLast(".lock".count))
        guard FileManager.default.fileExists(atPath: description),
            // A lockfile made with `kiln lock --arch` answers the description built for that architecture.
            let appliance = try? ApplianceLoader(arch: Architecture(debianName: lockfile.architecture)).load(
                description),
            let sources = try? AptSources.load(
                listFile: "\(aptSources)/sources.list", partsDirectory: "\(aptSources)/sources.list.d",
                architecture: lockfile.architecture)
        else { return nil }
        let platforms: [Platform?] = [nil] + Platform.allCases
        for platform in platforms {
            guard let request = try? PackageRequest(appliance: appliance, hostSources: sources, platform: platform)
            else { return nil }
            if lockfile.answers(
                requested: request.packages, base: request.base, architecture: lockfile.architecture,
                fileURLs: request.fileURLs)
            {
                return nil
            }
        }
        return "it no longer answers \(description); `kiln lock \(description)` or the next build renews it"
    }

    /// `kiln validate --json`'s result: each file's verdict, its errors with their places, its warnings.
    struct Result: Encodable {
        struct File: Encodable {
            let file: String
            /// `description` or `lockfile`.
            let kind: String
            let ok: Bool
            let errors: [Problem]
            var warnings: [String]? = nil
        }

        struct Problem: Encodable {
            let file: String
            var line: Int? = nil
            var column: Int? = nil
            let message: String
        }

        let files: [File]
        let ok: Bool
    }
}
