import Foundation
import KilnArchive
import KilnTestSupport
import Testing

@testable import Builder

/// Real packages from the host's apt sources (`apt-get download`), judged by GNU tar and dpkg-query.
@Suite(.serialized) struct TargetRootTests {
    static let packages = ["base-passwd", "usr-is-merged", "bash", "libc6"]

    static var canDownload: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-query")
    }

    private func run(_ arguments: [String], in directory: String? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.requires(canDownload, "apt-get and dpkg-query"))
    func unpackedPackagesFormAMergedUsrTreeThatDpkgReads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-root-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: "\(dir)/debs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (downloaded, log) = try run(["apt-get", "download", "-q"] + Self.packages, in: "\(dir)/debs")
        try #require(downloaded == 0, "apt-get download failed: \(log)")
        let debs = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/debs").sorted().map {
            "\(dir)/debs/\($0)"
        }

        let root = try TargetRoot.write(debs: debs, to: "\(dir)/root.tar", modificationTime: 1_700_000_000)
        #expect(Set(root.packages.map(\.name)) == Set(Self.packages))
        #expect(root.packages.first { $0.name == "libc6" }?.databaseKey == "libc6:amd64")

        // GNU tar reads the stream, and the layout is merged-/usr.
        try FileManager.default.createDirectory(atPath: "\(dir)/tree", withIntermediateDirectories: true)
        let (untar, untarLog) = try run(["tar", "-xf", "\(dir)/root.tar", "-C", "\(dir)/tree"])
        try #require(untar == 0, "tar failed: \(untarLog)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/tree/bin") == "usr/bin")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/tree/lib64") == "usr/lib64")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/tree/usr/bin/bash"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/tree/usr/lib64/ld-linux-x86-64.so.2"))

        // dpkg reads the database: every package unpacked, file lists under the packages' own paths.
        let admin = "\(dir)/tree/var/lib/dpkg"
        let (query, status) = try run([
            "dpkg-query", "--admindir=\(admin)", "-W", "-f=${Package} ${db:Status-Abbrev}\n",
        ])
        try #require(query == 0, "dpkg-query failed: \(status)")
        for name in Self.packages { #expect(status.contains("\(name) iU"), "\(name) is not unpacked: \(status)") }
        let (_, owner) = try run(["dpkg-query", "--admindir=\(admin)", "-S", "/bin/bash"])
        #expect(owner.hasPrefix("bash: /bin/bash"))
        let (_, conffiles) = try run(["dpkg-query", "--admindir=\(admin)", "-W", "-f=${Conffiles}\n", "bash"])
        #expect(conffiles.contains("/etc/bash.bashrc newconffile"))
    }
}
