import Foundation
import Packages
import Testing

@testable import Builder

/// The configured-base cache: a base is found only for exactly the inputs that made it, and one
/// that was not completely stored is never found.
struct BaseCacheTests {
    static func package(_ name: String, _ sha: String) -> Lockfile.Package {
        Lockfile.Package(
            name: name, version: "1.0", architecture: "amd64", uri: "http://archive.invalid/debian", suite: "bookworm",
            filename: "pool/main/\(name).deb", size: 1, sha256: String(repeating: sha, count: 64))
    }

    static let target = [package("base-files", "a"), package("openssh-server", "b")]
    static let builder = [package("busybox-static", "c"), package("tar", "d")]

    static func key(
        target: [Lockfile.Package] = target, builder: [Lockfile.Package] = builder, shape: String = "hybrid root ext4",
        epoch: Int64 = 1_700_000_000
    ) -> String {
        BaseCache.key(
            targetPackages: target, builderPackages: builder, shape: shape, architecture: "amd64",
            sourceDateEpoch: epoch)
    }

    @Test func everyInputChangesTheKey() {
        let keys = [
            Self.key(),
            Self.key(target: [Self.package("base-files", "a"), Self.package("openssh-server", "e")]),
            Self.key(target: Self.target.reversed()),
            Self.key(target: Array(Self.target.prefix(1))),
            Self.key(builder: [Self.package("busybox-static", "c"), Self.package("tar", "f")]),
            Self.key(shape: "bios root ext4"),
            Self.key(epoch: 1_700_000_001),
        ]
        #expect(Set(keys).count == keys.count)
        #expect(Self.key() == Self.key())
    }

    @Test func storedBaseIsFoundWithItsSizeAndOnlyUnderItsKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-base-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cache = BaseCache(cacheDirectory: directory)
        #expect(cache.lookup(Self.key()) == nil)

        // The guest's output disk: the tar, then zeros up to the disk's size.
        let disk = "\(directory)/output.raw"
        var bytes = Data(repeating: 0x61, count: 3 * 512)
        bytes.append(Data(count: 1 << 20))
        try bytes.write(to: URL(fileURLWithPath: disk))
        try cache.store(disk, size: 3 * 512, key: Self.key())

        let found = try #require(cache.lookup(Self.key()))
        #expect(try Data(contentsOf: URL(fileURLWithPath: found)) == Data(repeating: 0x61, count: 3 * 512))
        #expect(cache.lookup(Self.key(epoch: 1)) == nil)
        // Nothing half-written is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory) == ["\(Self.key()).tar"])
    }

    @Test func onlyTheMostRecentlyUsedBasesAreKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-bases-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cache = BaseCache(cacheDirectory: directory)
        let keys = (0..<(BaseCache.keep + 2)).map { Self.key(epoch: Int64($0)) }
        for (index, key) in keys.enumerated() {
            let disk = "\(directory)/output.raw"
            try Data(repeating: 0x62, count: 512).write(to: URL(fileURLWithPath: disk))
            try cache.store(disk, size: 512, key: key)
            // File times have a resolution of their own: space the stores out.
            let time = Date(timeIntervalSince1970: 1_000_000 + Double(index) * 10)
            try FileManager.default.setAttributes([.modificationDate: time], ofItemAtPath: cache.path(key))
        }
        let kept = keys.filter { cache.lookup($0) != nil }
        #expect(kept == Array(keys.suffix(BaseCache.keep)))
    }

    /// The initramfs the guest wrote after the base, at a MiB offset of the same output disk, is
    /// kept byte for byte with its inputs' digest, and dropped with its base.
    @Test func initramfsIsKeptBesideItsBaseAndDroppedWithIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-initramfs-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cache = BaseCache(cacheDirectory: directory)
        let key = Self.key()
        let digest = String(repeating: "5e", count: 32)
        #expect(cache.initramfs(key) == nil)

        let disk = "\(directory)/output.raw"
        let initramfs = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        var bytes = Data(repeating: 0x61, count: 3 * 512)
        bytes.append(Data(count: (1 << 20) - bytes.count))
        bytes.append(initramfs)
        bytes.append(Data(count: 4096))
        try bytes.write(to: URL(fileURLWithPath: disk))
        #expect(throws: BuilderError.self) {
            try cache.storeInitramfs(from: disk, offset: 1 << 20, size: 5000, inputs: "not a digest", key: key)
        }
        #expect(throws: BuilderError.self) {
            try cache.storeInitramfs(from: disk, offset: 1 << 20, size: 50_000, inputs: digest, key: key)
        }
        #expect(cache.initramfs(key) == nil, "a refused or short initramfs was kept")
        try cache.storeInitramfs(from: disk, offset: 1 << 20, size: 5000, inputs: digest, key: key)
        try cache.store(disk, size: 3 * 512, key: key)

        let kept = try #require(cache.initramfs(key))
        #expect(kept.inputs == digest)
        #expect(try Data(contentsOf: URL(fileURLWithPath: kept.tar)) == initramfs)
        #expect(cache.initramfs(Self.key(epoch: 1)) == nil)

        // Newer bases push this one out; its initramfs goes with it.
        for epoch in 1...Int64(BaseCache.keep) {
            try Data(repeating: 0x62, count: 512).write(to: URL(fileURLWithPath: disk))
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSince1970: 1_000_000)], ofItemAtPath: cache.path(key))
            try cache.store(disk, size: 512, key: Self.key(epoch: epoch))
        }
        #expect(cache.lookup(key) == nil)
        #expect(cache.initramfs(key) == nil)
        let left = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
        #expect(!left.contains { $0.hasPrefix(key) }, "left behind: \(left)")
    }
}
