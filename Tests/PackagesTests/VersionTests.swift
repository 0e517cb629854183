import Foundation
import KilnTestSupport
import Testing

@testable import Packages

@Suite struct VersionTests {
    /// Versions chosen to exercise every rule of Policy 5.6.12: epochs, `~` before the end, letters
    /// before other characters, digit runs compared as numbers with leading zeros, revisions,
    /// hyphens and colons inside the upstream part.
    static let versions = [
        "0", "0.0", "00", "1", "1.0", "1.0-0", "1.0-1", "1.0-1ubuntu1", "1.0-1+b1", "1.0-1~bpo12+1", "1.0~rc1",
        "1.0~rc1-1", "1.0~~", "1.0~~a", "1.0~", "1.0a", "1.0+", "1.0.", "1.0+dfsg", "1.0+dfsg-1", "1.00", "1.001",
        "1.01", "1.1", "1.10", "1.9", "1:0.1", "1:1.0", "2:0", "10:0", "1.0-a", "1.0-A", "1.0-.", "1.0-~",
        "2.36-9+deb12u4", "2.36-9+deb12u10", "2.36-9+deb12u9", "252.30-1~deb12u2", "252.38-1~deb12u1",
        "6.1.0-37", "6.1.140-1", "1:9.2p1-2+deb12u5", "1:9.2p1-2+deb12u6", "9.2p1", "a", "A", "Z", "z", "a~",
        "1.2.3-4-5", "1:2:3", "1:2:3-4", "0:1.0", "20230311", "2023.03.11", "1.0a~", "1.0a+", "1.0.0", "1.0.0.0",
        "3.0~alpha", "3.0~beta", "3.0~beta1", "3.0~beta10", "3.0~beta2",
    ]

    private static func dpkg(_ a: String, _ op: String, _ b: String) async throws -> Bool {
        let (status, output) = try await TestSupport.run(["dpkg", "--compare-versions", a, op, b])
        #expect(status == 0 || status == 1, "dpkg: \(output)")
        return status == 0
    }

    private static func dpkgOrder(_ a: String, _ b: String) async throws -> Int {
        if try await dpkg(a, "lt", b) { return -1 }
        return try await dpkg(a, "eq", b) ? 0 : 1
    }

    /// Sorted by kiln, every neighbour pair must stand in the same order for dpkg; as both are total
    /// orders, that makes the whole sort dpkg's. Then pairs across the list, for good measure.
    @Test(.requires(TestSupport.hasProgram("dpkg"), "dpkg as the judge"))
    func orderMatchesDpkg() async throws {
        let parsed = try Self.versions.map { try DebianVersion($0) }
        let sorted = parsed.sorted()
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            let ours = DebianVersion.compare(a, b)
            let theirs = try await Self.dpkgOrder(a.description, b.description)
            #expect(ours == theirs, "\(a) vs \(b)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<60 {
            let a = parsed.randomElement(using: &generator) ?? parsed[0]
            let b = parsed.randomElement(using: &generator) ?? parsed[0]
            #expect(
                DebianVersion.compare(a, b) == (try await Self.dpkgOrder(a.description, b.description)), "\(a) vs \(b)")
        }
    }

    @Test func partsAndBadVersions() throws {
        let version = try DebianVersion("1:2.3-4-5")
        #expect(version.epoch == 1 && version.upstream == "2.3-4" && version.revision == "5")
        #expect(try DebianVersion("1.0") == DebianVersion("0:1.0-0"))
        #expect(throws: PackagesError.self) { try DebianVersion("x:1.0") }
        #expect(throws: PackagesError.self) { try DebianVersion("") }
    }

    @Test func relationFields() throws {
        let clauses = try Relation.parseField(
            "libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.12), foo [amd64] <!nocheck>, bar (<= 1) ,  baz(>>2~)"
        )
        #expect(clauses.count == 6)
        #expect(clauses[0] == [Relation(name: "libc6", constraint: (.laterOrEqual, try DebianVersion("2.36")))])
        #expect(clauses[1].map(\.name) == ["debconf", "debconf-2.0"])
        #expect(clauses[2][0].architecture == "any" && clauses[2][0].constraint?.op == .earlier)
        #expect(clauses[3] == [Relation(name: "foo")])
        #expect(clauses[4][0].constraint?.op == .earlierOrEqual)
        #expect(clauses[5][0].constraint?.op == .later && clauses[5][0].constraint?.version.description == "2~")
        #expect(clauses[5][0].admits(try DebianVersion("2")))
        #expect(!clauses[5][0].admits(try DebianVersion("2~")))
        #expect(!clauses[0][0].admits(nil))
        #expect(
            try Relation.parseField("a (< 1), b (> 1)").map { $0[0].constraint?.op } == [
                .earlierOrEqual, .laterOrEqual,
            ])
        #expect(throws: PackagesError.self) { try Relation.parseField("libc6 (~= 2)") }
        #expect(throws: PackagesError.self) { try Relation.parseField("two words") }
    }
}
