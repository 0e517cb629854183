import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import NetBoot

@Suite("DHCP leases")
struct DHCPLeasesTests {
    private let known = MACAddress([0x52, 0x54, 0, 0, 0, 1])
    private let first = MACAddress([0x52, 0x54, 0, 0, 0, 2])
    private let second = MACAddress([0x52, 0x54, 0, 0, 0, 3])
    private let third = MACAddress([0x52, 0x54, 0, 0, 0, 4])

    private func book() throws -> DHCPLeases {
        let low = try #require(IPv4Address("192.0.2.100"))
        let high = try #require(IPv4Address("192.0.2.101"))
        return DHCPLeases(pool: low...high, fixed: [known: try #require(IPv4Address("192.0.2.10"))])
    }

    @Test func fixedPoolAndExhaustion() throws {
        var leases = try book()
        #expect(leases.offer(for: known, now: 0)?.description == "192.0.2.10")
        let a = try #require(leases.offer(for: first, now: 0))
        try leases.bind(a, to: first, seconds: 3600, now: 0)
        let b = try #require(leases.offer(for: second, now: 0))
        #expect(a != b)
        try leases.bind(b, to: second, seconds: 3600, now: 0)
        #expect(leases.offer(for: third, now: 10) == nil, "the pool has two addresses")
        #expect(throws: NetBootError.self) { try leases.bind(a, to: third, seconds: 60, now: 10) }
        #expect(throws: NetBootError.self) { try leases.bind(a, to: known, seconds: 60, now: 10) }
        // After expiry the address can go to someone else; a release frees it at once.
        #expect(leases.offer(for: third, now: 3601) == a || leases.offer(for: third, now: 3601) == b)
        leases.release(second)
        #expect(leases.offer(for: third, now: 10) == b)
    }

    /// Two machines powered on together: each DISCOVER gets its own address, held until the offer
    /// expires, so that neither REQUEST is refused.
    @Test func anOfferedAddressIsHeldForItsClient() throws {
        var leases = try book()
        let a = try #require(leases.offer(for: first, now: 0))
        leases.reserve(a, for: first, now: 0)
        let b = try #require(leases.offer(for: second, now: 1))
        leases.reserve(b, for: second, now: 1)
        #expect(a != b)
        #expect(leases.offer(for: first, now: 2) == a, "a repeated DISCOVER gets the same offer")
        try leases.bind(b, to: second, seconds: 3600, now: 3)
        try leases.bind(a, to: first, seconds: 3600, now: 4)
        // An offer nobody took is released after its hold.
        var other = try book()
        other.reserve(a, for: first, now: 0)
        #expect(other.offer(for: second, now: 10) != a)
        #expect(other.offer(for: second, now: DHCPLeases.offerHoldSeconds + 1) == a)
    }

    /// A book with `first` bound until 3700, saved to `folder/leases`.
    private func savedBook(in folder: TemporaryFolder) throws -> (leases: DHCPLeases, path: String, a: IPv4Address) {
        let path = folder.path + "/leases"
        var leases = try book()
        let a = try #require(leases.offer(for: first, now: 0))
        try leases.bind(a, to: first, seconds: 3600, now: 100)
        try leases.save(to: path)
        return (leases, path, a)
    }

    @Test func leasesSurviveARestart() throws {
        let folder = try TemporaryFolder()
        let (leases, path, a) = try savedBook(in: folder)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["leases"], "no temporary left")

        var restarted = try book()
        try restarted.load(from: path)
        #expect(restarted == leases)
        #expect(restarted.offer(for: first, now: 200) == a)
        #expect(restarted.offer(for: second, now: 200) != a)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("52:54:00:00:00:02 \(a) 3700"))
    }

    /// kill -9 in the middle of a save leaves the temporary file, half written, and no rename: a
    /// restart reads the lease file as it was, and the next save removes the dead writer's file.
    /// (The lab's installed-hosts record is written the same way: `LabStateTests`.)
    @Test func aKilledSaveLeavesTheFileAsItWas() async throws {
        let folder = try TemporaryFolder()
        let (leases, path, _) = try savedBook(in: folder)
        let before = try String(contentsOfFile: path, encoding: .utf8)
        let dead = try ProcessTable.endedPID()
        let partial = folder.path + "/.leases.kiln-\(dead)-42"
        try Data("52:54:00:00:00:03 192.0".utf8).write(to: URL(fileURLWithPath: partial))

        var restarted = try book()
        try restarted.load(from: path)
        #expect(restarted == leases)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
        try restarted.bind(try #require(restarted.offer(for: second, now: 200)), to: second, seconds: 60, now: 200)
        try restarted.save(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["leases"], "the dead save's file")
    }

    @Test func aDamagedLeaseFileNamesItsLine() throws {
        let folder = try TemporaryFolder()
        let path = folder.path + "/leases"
        try Data("# header\n52:54:00:00:00:02 192.0.2.100 5\nnonsense\n".utf8).write(to: URL(fileURLWithPath: path))
        var leases = try book()
        let error = #expect(throws: NetBootError.self) { try leases.load(from: path) }
        #expect(error?.message.hasSuffix(":3: not a lease line: 'nonsense'") == true)
    }
}
