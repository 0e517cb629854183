import Foundation
import Testing

@testable import Packages

@Suite struct LockfileTests {
    static func lockfile() throws -> Lockfile {
        let resolver = try ResolverTests.index([
            try ResolverTests.package("zlib1g", "1:1.2.13", priority: "required"),
            try ResolverTests.package("app", "1.0-1", depends: "zlib1g"),
        ])
        let resolution = try resolver.resolve(["app"], base: .none)
        return Lockfile(resolution: resolution, index: resolver.index, requested: ["app", "app"], base: .none)
    }

    @Test func roundTripsAndIsStable() throws {
        let dir = try TestSupport.scratch("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lockfile = try Self.lockfile()
        #expect(lockfile.requested == ["app"])
        #expect(lockfile.packages.map(\.label) == ["app=1.0-1", "zlib1g=1:1.2.13"])
        #expect(lockfile.packages[0].url == "http://archive.example.org/debian/pool/main/app_1.0-1_amd64.deb")
        try lockfile.write(to: "\(dir)/a.lock")
        let read = try Lockfile.read("\(dir)/a.lock")
        #expect(read == lockfile)
        #expect(read.encoded() == lockfile.encoded())
        // Sorted keys: the text does not depend on dictionary order or on the run.
        let text = lockfile.encoded()
        #expect(text.hasPrefix("{\n  \"architecture\" : \"amd64\",\n  \"archives\" : [\n\n  ],\n  \"base\" : \"none\""))
        #expect(text.contains("\"filename\" : \"pool/main/app_1.0-1_amd64.deb\""))
        #expect(read.answers(requested: ["app"], base: .none, architecture: "amd64"))
        #expect(!read.answers(requested: ["app", "vim"], base: .none, architecture: "amd64"))
    }

    @Test func rejectsOtherFiles() throws {
        let dir = try TestSupport.scratch("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"name\": 1}".write(toFile: "\(dir)/bad.lock", atomically: true, encoding: .utf8)
        #expect(throws: PackagesError.self) { try Lockfile.read("\(dir)/bad.lock") }
        #expect(throws: PackagesError.self) { try Lockfile.read("\(dir)/missing.lock") }
    }
}
