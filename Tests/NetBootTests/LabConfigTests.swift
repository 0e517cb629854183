import Foundation
import Testing

@testable import NetBoot

@Suite("The lab file")
struct LabConfigTests {
    @Test func readsEveryKey() throws {
        let folder = try TemporaryFolder()
        let path = try LabFixtures.write(LabFixtures.serverLab(), into: folder.path)
        let lab = try LabConfig.load(path)
        #expect(lab.address == IPv4Address("192.0.2.1"))
        #expect(lab.tftp == HostPort(host: "::", port: 69))
        #expect(lab.http == HostPort(host: "::", port: 8080))
        #expect(lab.httpBase == "http://192.0.2.1:8080")
        #expect(lab.dhcp.mode == .server)
        #expect(lab.dhcp.range == IPv4Address("192.0.2.100")!...IPv4Address("192.0.2.110")!)
        #expect(lab.dhcp.leaseTime == 600)
        #expect(lab.dhcp.dns == [IPv4Address("192.0.2.1")!])
        #expect(lab.dhcp.leaseFile == folder.path + "/lab.yaml.state/leases")
        #expect(lab.stateDirectory == folder.path + "/lab.yaml.state")
        #expect(lab.hosts.map(\.name) == ["lab-07", "lab-08"])
        #expect(lab.hosts[0].mac == MACAddress("52:54:00:12:34:56"))
        #expect(lab.hosts[0].address == IPv4Address("192.0.2.17"))
        #expect(lab.hosts[0].description == folder.path + "/debian.yaml")
        #expect(lab.hosts[1].mac == MACAddress("52:54:00:ab:cd:ef"))
        #expect(lab.hosts[1].installer?.kernel == folder.path + "/vmlinuz")
    }

    /// Each mistake is reported at its own line and column, all in one go.
    @Test func namesEveryMistakeWithItsPosition() throws {
        let folder = try TemporaryFolder()
        let text = """
            adress: 192.0.2.1
            dhcp:
              mode: sever
              range: 192.0.2.9-192.0.2.1
            hosts:
              - mac: "52:54:00:12:34"
                name: lab 7
                description: missing.yaml

            """
        let path = try LabFixtures.write(text, into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        let lines = error.message.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(path):1:1: error: unknown key 'adress' in the lab file (did you mean 'address'?)"))
        #expect(lines.contains("\(path):3:9: error: dhcp.mode 'sever' is not one of proxy, server, off"))
        #expect(lines.contains { $0.hasPrefix("\(path):4:10: error: dhcp.range '192.0.2.9-192.0.2.1'") })
        #expect(lines.contains { $0.hasPrefix("\(path):6:10: error: mac '52:54:00:12:34'") })
        #expect(lines.contains { $0.hasPrefix("\(path):7:11: error: name 'lab 7'") })
        #expect(lines.contains { $0.hasPrefix("\(folder.path)/missing.yaml:") })
        #expect(lines.contains { $0.contains("missing 'address'") })
    }

    @Test func syntaxErrorsCarryTheirPosition() throws {
        let folder = try TemporaryFolder()
        let path = try LabFixtures.write("address: 192.0.2.1\nhosts: [a, b\n", into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        #expect(error.message.hasPrefix("\(path):3:1: error:"), "\(error.message)")
    }

    @Test func refusesDuplicateHostsAndKilnsOwnAddress() throws {
        let folder = try TemporaryFolder()
        let text = """
            address: 192.0.2.1
            dhcp: {mode: off}
            hosts:
              - {mac: "52:54:00:00:00:01", name: a, description: debian.yaml, address: 192.0.2.1}
              - {mac: "52:54:00:00:00:01", name: a, description: debian.yaml}

            """
        let path = try LabFixtures.write(text, into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        #expect(error.message.contains("\(path):4:5: error: address 192.0.2.1 is kiln's own"))
        #expect(error.message.contains("\(path):5:5: error: mac 52:54:00:00:00:01 is also host 'a' at \(path):4:5"))
        #expect(error.message.contains("\(path):5:5: error: name 'a' is also used at \(path):4:5"))
    }

    @Test func serverModeNeedsARange() throws {
        let folder = try TemporaryFolder()
        let path = try LabFixtures.write("address: 192.0.2.1\ndhcp:\n  mode: server\n", into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        #expect(error.message == "\(path):3:3: error: dhcp mode 'server' needs a range (FIRST-LAST)")
    }
}

@Suite("The README's example lab file")
struct ReadmeLabTests {
    /// The first YAML block after the "Lab file" heading reads cleanly, as if it sat in a folder beside
    /// Appliances/.
    @Test func exampleReadsCleanly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        let section = try #require(readme.range(of: "### Lab file"))
        let rest = readme[section.upperBound...]
        let start = try #require(rest.range(of: "```yaml\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let text = String(rest[start.upperBound..<end.lowerBound])
        let lab = try LabConfig.parse(text, path: "lab.yaml", absolutePath: root + "/lab/lab.yaml")
        #expect(lab.hosts.count == 2)
        #expect(lab.dhcp.mode == .server)
        #expect(lab.interface == "br-lab")
    }
}
