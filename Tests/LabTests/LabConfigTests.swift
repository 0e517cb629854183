import Foundation
import KilnTestSupport
import NetBoot
import Testing

@testable import Lab

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

    @Test func readsImageDeployHosts() throws {
        let folder = try TemporaryFolder()
        try Data("not really an image".utf8).write(to: URL(fileURLWithPath: folder.path + "/golden.qcow2"))
        try LabFixtures.debianDescription.write(toFile: folder.path + "/debian.yaml", atomically: true, encoding: .utf8)
        let text = """
            address: 192.0.2.1
            hosts:
              - {mac: "52:54:00:00:00:01", name: a, image: golden.qcow2}
              - {mac: "52:54:00:00:00:02", name: b, image: golden.qcow2, disk: /dev/nvme0n1, after: poweroff}
              - {mac: "52:54:00:00:00:03", name: c, description: debian.yaml, install: image}
              - {mac: "52:54:00:00:00:04", name: d, description: debian.yaml}

            """
        let lab = try LabConfig.load(try LabFixtures.write(text, into: folder.path))
        #expect(lab.hosts.map(\.install) == [.image, .image, .image, .installer])
        #expect(lab.hosts[0].image == folder.path + "/golden.qcow2")
        #expect(lab.hosts[0].description == nil)
        #expect(lab.hosts[0].after == .reboot && lab.hosts[0].disk == nil)
        #expect(lab.hosts[1].disk == "/dev/nvme0n1" && lab.hosts[1].after == .poweroff)
        #expect(lab.hosts[2].image == nil && lab.hosts[2].description == folder.path + "/debian.yaml")
    }

    /// `arch:` on a host: x86_64 by default, aarch64 for arm64 hosts (which then boot arm64 GRUB).
    @Test func readsHostArchitectures() throws {
        let folder = try TemporaryFolder()
        let text = """
            address: 192.0.2.1
            hosts:
              - {mac: "52:54:00:00:00:01", name: a, description: debian.yaml}
              - {mac: "52:54:00:00:00:02", name: b, description: debian.yaml, arch: aarch64}
              - {mac: "52:54:00:00:00:03", name: c, description: debian.yaml, arch: x86_64}

            """
        let lab = try LabConfig.load(try LabFixtures.write(text, into: folder.path))
        #expect(lab.hosts.map(\.arch) == [.x86_64, .aarch64, .x86_64])
        #expect(lab.architectures == [.x86_64, .aarch64])
        #expect(LabServer.loaders(lab).uefiARM64 == "grubnetaa64.efi")
        #expect(LabServer.loaders(lab).uefi64 == "grubnetx64.efi")
        let x86Only = try LabConfig.parse(
            "address: 192.0.2.1\nhosts:\n  - {mac: \"52:54:00:00:00:01\", name: a, description: debian.yaml}\n",
            path: folder.path + "/lab.yaml")
        #expect(LabServer.loaders(x86Only).uefiARM64 == nil)
    }

    /// A misspelt architecture, and an arm64 host that would need the (x86_64) deploy agent.
    @Test func namesArchitectureMistakes() throws {
        let folder = try TemporaryFolder()
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder.path + "/golden.raw"))
        let text = """
            address: 192.0.2.1
            hosts:
              - {mac: "52:54:00:00:00:01", name: a, description: debian.yaml, arch: arm64}
              - {mac: "52:54:00:00:00:02", name: b, description: debian.yaml, install: image, arch: aarch64}
              - {mac: "52:54:00:00:00:03", name: c, image: golden.raw, arch: aarch64}
              - {mac: "52:54:00:00:00:04", name: d, description: debian.yaml, arche: aarch64}

            """
        let path = try LabFixtures.write(text, into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        let lines = error.message.split(separator: "\n").map(String.init)
        let misspelt = "error: arch 'arm64' is not one of x86_64, aarch64 (Debian's arm64 is 'aarch64')"
        #expect(lines.contains("\(path):3:73: \(misspelt)"), "\(lines)")
        let deploy = "error: arm64 image deploys are not supported yet: kiln's deploy agent is x86_64 only"
        #expect(lines.contains { $0.hasPrefix("\(path):4:89: \(deploy)") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):5:66: \(deploy)") }, "\(lines)")
        #expect(lines.contains("\(path):6:67: error: unknown key 'arche' in a host (did you mean 'arch'?)"), "\(lines)")
        #expect(lines.count == 4, "\(lines)")
    }

    /// Image deploy mistakes, each at its own position.
    @Test func namesImageDeployMistakes() throws {
        let folder = try TemporaryFolder()
        try LabFixtures.debianDescription.write(toFile: folder.path + "/debian.yaml", atomically: true, encoding: .utf8)
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder.path + "/golden.raw"))
        let text = """
            address: 192.0.2.1
            hosts:
              - {mac: "52:54:00:00:00:01", name: a, image: missing.qcow2}
              - {mac: "52:54:00:00:00:02", name: b, image: golden.raw, description: debian.yaml}
              - {mac: "52:54:00:00:00:03", name: c, image: golden.raw, disk: sda, after: halt}
              - {mac: "52:54:00:00:00:04", name: d, description: debian.yaml, disk: /dev/sda}
              - {mac: "52:54:00:00:00:05", name: e}
              - {mac: "52:54:00:00:00:06", name: f, image: golden.raw, install: installer}

            """
        let path = try LabFixtures.write(text, into: folder.path)
        let error = try #require(throws: NetBootError.self) { try LabConfig.load(path) }
        let lines = error.message.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(path):3:48: error: image '\(folder.path)/missing.qcow2' does not exist"), "\(lines)")
        #expect(
            lines.contains { $0.hasPrefix("\(path):4:73: error: a host names either an 'image' or a 'description'") })
        #expect(lines.contains { $0.hasPrefix("\(path):5:66: error: disk 'sda' is not a device path") }, "\(lines)")
        #expect(lines.contains("\(path):5:78: error: after 'halt' is not one of reboot, poweroff"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):6:73: error: 'disk' and 'after' go with an image deploy") })
        #expect(lines.contains { $0.hasPrefix("\(path):7:5: error: a host needs a 'description'") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):8:69: error: install 'installer' needs a 'description'") })
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

@Suite("docs/pxe.md's example lab file")
struct ReadmeLabTests {
    /// The first YAML block after the "Lab file" heading of docs/pxe.md (the README's reference for
    /// `kiln serve`) reads cleanly, as if it sat in a folder beside Appliances/.
    @Test func exampleReadsCleanly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let readme = try String(contentsOfFile: root + "/docs/pxe.md", encoding: .utf8)
        let section = try #require(readme.range(of: "## Lab file"))
        let rest = readme[section.upperBound...]
        let start = try #require(rest.range(of: "```yaml\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let text = String(rest[start.upperBound..<end.lowerBound])
        let lab = try LabConfig.parse(text, path: "lab.yaml", absolutePath: root + "/lab/lab.yaml")
        #expect(lab.hosts.count == 3)
        #expect(lab.hosts.last?.install == .image)
        #expect(lab.dhcp.mode == .server)
        #expect(lab.interface == "br-lab")
    }
}
