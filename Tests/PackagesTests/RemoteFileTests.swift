import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Packages

/// Files named by URL, pinned and fetched from a real HTTP server on loopback (Python's
/// http.server), judged by sha256sum.
@Suite(.requires(.program("python3"), .program("sha256sum")))
struct RemoteFileTests {
    /// Serves `root` on 127.0.0.1 on a port the kernel picks; returns the process and the port.
    static func serve(_ root: String) throws -> (Process, Int) {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "python3", "-c",
            """
            import functools, http.server, sys
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """,
            root,
        ]
        let pipe = Pipe()
        server.standardOutput = pipe
        server.standardError = FileHandle.nullDevice
        try server.run()
        var line = Data()
        while let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        return (server, Int(String(decoding: line, as: UTF8.self)) ?? 0)
    }

    @Test func pinsWhatArrivedAndLaterFetchesExactlyThoseBytes() async throws {
        let dir = try TestSupport.scratch("remote")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/www", withIntermediateDirectories: true)
        let first = Data((0..<70_001).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try first.write(to: URL(fileURLWithPath: "\(dir)/www/banner.txt"))
        let (server, port) = try Self.serve("\(dir)/www")
        defer { server.terminate() }
        #expect(port > 0)
        let url = "http://127.0.0.1:\(port)/banner.txt"
        let cache = PackageCache(root: "\(dir)/cache")

        let pins = try await cache.pin([url, url])
        #expect(pins.count == 1)
        let (_, sum) = try await TestSupport.run(["sha256sum", "\(dir)/www/banner.txt"])
        #expect(pins.first?.sha256 == String(sum.prefix(64)))
        #expect(pins.first?.size == Int64(first.count))

        // The server's copy changes; the pinned bytes come from the cache, also offline.
        try Data("changed upstream\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/www/banner.txt"))
        let paths = try await cache.fetch(pins, offline: true)
        #expect(FileManager.default.contents(atPath: paths[url] ?? "") == first)

        // Without the cached copy, offline names the URL, and online the changed bytes are refused.
        try FileManager.default.removeItem(atPath: paths[url] ?? "")
        do {
            _ = try await cache.fetch(pins, offline: true)
            Issue.record("an offline fetch of a missing file succeeded")
        } catch {
            #expect(error.code == .offline)
            #expect(error.message.contains(url))
        }
        do {
            _ = try await cache.fetch(pins)
            Issue.record("changed bytes were accepted")
        } catch {
            #expect(error.code == .integrity)
        }
        #expect(!FileManager.default.fileExists(atPath: cache.path(.files, sha256: pins[0].sha256)))

        // A URL that does not answer with the file fails with its status.
        do {
            _ = try await cache.pin(["http://127.0.0.1:\(port)/missing"])
            Issue.record("a 404 was pinned")
        } catch {
            #expect(error.message.contains("404"))
        }
    }

    @Test func lockfilesNameTheirFilesOnlyWhenThereAreAny() throws {
        var lockfile = Lockfile(architecture: "amd64", base: .minbase, requested: ["a"], archives: [], packages: [])
        #expect(!lockfile.encoded().contains("\"files\""))
        #expect(lockfile.answers(requested: ["a"], base: .minbase, architecture: "amd64"))
        #expect(!lockfile.answers(requested: ["a"], base: .minbase, architecture: "amd64", fileURLs: ["http://x/y"]))
        lockfile.files = [RemoteFile(url: "http://x/y", size: 1, sha256: String(repeating: "0", count: 64))]
        #expect(lockfile.encoded().contains("\"files\""))
        #expect(
            lockfile.answers(
                requested: ["a"], base: .minbase, architecture: "amd64", fileURLs: ["http://x/y", "http://x/y"]))
    }
}
