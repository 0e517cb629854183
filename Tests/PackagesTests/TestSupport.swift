import Foundation
import KilnSupport

@testable import Packages

enum TestSupport {
    static func scratch(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(name)-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func hasProgram(_ name: String) -> Bool {
        let path = Subprocess.minimalEnvironment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Runs a program and returns its exit status and output.
    static func run(_ arguments: [String]) async throws -> (Int32, String) {
        let (ended, output) = try await Subprocess.output(arguments)
        guard case .exited(let code) = ended else { return (-1, output) }
        return (code, output)
    }

    /// The host's binary apt sources, which tests that reach the real archive use.
    static let hostSources: [ArchiveSource] = (try? AptSources.load()) ?? []

    static var archiveReachable: Bool {
        !hostSources.isEmpty && FileManager.default.fileExists(atPath: ArchiveSource.defaultKeyring)
            && hasProgram("gpgv")
    }

    /// The index of the host's sources, fetched once per test run and shared by the tests that need it.
    static let hostIndex = Task<PackageIndex, Error> {
        let root = try ProcessInfo.processInfo.environment["KILN_CACHE"] ?? scratch("cache")
        let client = ArchiveClient(cache: PackageCache(root: root))
        return try await client.index(hostSources)
    }
}
