import Foundation
import Testing

@testable import Packages

@Suite struct PackagePlanTests {
    @Test func lockedAndOfflineNeverResolve() async throws {
        let dir = try TestSupport.scratch("plan")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = PackageCache(root: "\(dir)/cache")
        let lockPath = "\(dir)/app.lock"

        do {
            _ = try await PackagePlan.prepare(
                sources: [], requested: [], base: .none, lockPath: lockPath, locked: false, offline: true, cache: cache)
            Issue.record("--offline without a lockfile succeeded")
        } catch {
            #expect(error.message == "--offline needs the lockfile \(lockPath); run 'kiln lock' first")
        }

        try PackageCacheTests.archive(in: dir, count: 3).write(to: lockPath)
        do {
            _ = try await PackagePlan.prepare(
                sources: [], requested: ["vim"], base: .none, lockPath: lockPath, locked: true, offline: false,
                cache: cache)
            Issue.record("a lockfile for another request was used")
        } catch {
            #expect(error.code == .resolution)
        }

        let prepared = try await PackagePlan.prepare(
            sources: [], requested: [], base: .none, lockPath: lockPath, locked: true, offline: false, cache: cache)
        #expect(prepared.packages.count == 3)
        try FileManager.default.removeItem(atPath: "\(dir)/repo")
        let again = try await PackagePlan.prepare(
            sources: [], requested: [], base: .none, lockPath: lockPath, locked: false, offline: true, cache: cache)
        #expect(again.packages == prepared.packages)
    }
}
