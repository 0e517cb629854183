import Crypto
import Foundation
import KilnSupport
import Testing

@testable import Packages

@Suite struct PackageCacheTests {
    /// A lockfile over `count` files of a local `file:` archive.
    static func archive(in dir: String, count: Int) throws -> Lockfile {
        try FileManager.default.createDirectory(atPath: "\(dir)/repo/pool", withIntermediateDirectories: true)
        var packages: [Lockfile.Package] = []
        for number in 0..<count {
            let data = Data((0..<(1000 + number * 3000)).map { UInt8(truncatingIfNeeded: $0 * (number + 7)) })
            try data.write(to: URL(fileURLWithPath: "\(dir)/repo/pool/p\(number).deb"))
            packages.append(
                Lockfile.Package(
                    name: "p\(number)", version: "1", architecture: "amd64", uri: "file://\(dir)/repo", suite: "stable",
                    filename: "pool/p\(number).deb", size: Int64(data.count), sha256: SHA256.hash(data: data).hex))
        }
        return Lockfile(format: 1, architecture: "amd64", base: .none, requested: [], archives: [], packages: packages)
    }

    final class Events: @unchecked Sendable {
        // @unchecked: appended under `lock`.
        let lock = NSLock()
        var list: [ProgressEvent] = []
        var sink: ProgressSink { ProgressSink { [self] event in lock.withLock { list.append(event) } } }
    }

    @Test func fetchesVerifiesAndServesOffline() async throws {
        let dir = try TestSupport.scratch("cache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lockfile = try Self.archive(in: dir, count: 12)
        let cache = PackageCache(root: "\(dir)/cache")

        await #expect(throws: PackagesError.self) { try await cache.fetch(lockfile, offline: true) }
        do {
            _ = try await cache.fetch(lockfile, offline: true)
        } catch {
            #expect(error.code == .offline)
            #expect(error.message.contains("12 packages are not in the cache \(dir)/cache: p0=1, p1=1"))
            #expect(error.message.hasSuffix("and 2 more"))
        }

        let events = Events()
        let local = try await cache.fetch(lockfile, concurrency: 3, progress: events.sink)
        #expect(local.map(\.package) == lockfile.packages)
        for item in local {
            let data = try Data(contentsOf: URL(fileURLWithPath: item.path))
            #expect(SHA256.hash(data: data).hex == item.package.sha256)
            #expect(item.path == "\(dir)/cache/debs/sha256/\(item.package.sha256)")
        }
        let total = lockfile.packages.reduce(Int64(0)) { $0 + $1.size }
        #expect(events.list.last == .progress("download", completed: total, total: total))

        // Now everything is cached: offline works and nothing is read from the archive.
        try FileManager.default.removeItem(atPath: "\(dir)/repo")
        #expect(try await cache.fetch(lockfile, offline: true) == local)
    }

    @Test func aCorruptDownloadNeverEntersTheCache() async throws {
        let dir = try TestSupport.scratch("cache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var lockfile = try Self.archive(in: dir, count: 2)
        // The archive's file changed after locking.
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: "\(dir)/repo/pool/p1.deb"))
        lockfile.packages[1].size = 8
        let cache = PackageCache(root: "\(dir)/cache")
        do {
            _ = try await cache.fetch(lockfile)
            Issue.record("a tampered file was accepted")
        } catch {
            #expect(error.code == .integrity)
            #expect(error.message.contains("p1.deb: SHA-256"))
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/cache/debs/sha256")
        #expect(!kept.contains(lockfile.packages[1].sha256))
        #expect(!kept.contains { $0.hasPrefix(".") })
    }
}
