import Foundation
import KilnSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// kiln's full DHCP server against busybox's udhcpc, in two network namespaces the test makes.
@Suite(
    "kiln serve --config: the DHCP server with a real client", .serialized,
    .enabled(if: Tools.namespaces && Tools.has("udhcpc"), "needs root, iproute2 and udhcpc (busybox)")
)
struct DHCPServerNamespaceTests {
    /// udhcpc's event script: configures the address it binds (so that a release can reach kiln) and
    /// prints what it was given.
    static let script = """
        #!/bin/sh
        case "$1" in
          deconfig) ip addr flush dev "$interface" ;;
          bound) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
        esac
        if [ "$1" = bound ]; then
          echo "bound ip=$ip subnet=$subnet router=$router dns=$dns hostname=$hostname siaddr=$siaddr boot_file=$boot_file"
        fi
        exit 0

        """

    func lab(_ folder: TemporaryFolder) throws -> String {
        let text = """
            address: 192.0.2.1
            interface: veth-kiln
            tftp: ":69"
            http: ":8080"
            dhcp:
              mode: server
              range: 192.0.2.100-192.0.2.110
              router: 192.0.2.1
              dns: [192.0.2.1]
              lease_time: 600
            hosts:
              - mac: "52:54:00:12:34:56"
                name: lab-07
                description: debian.yaml
                address: 192.0.2.17

            """
        try FileManager.default.createDirectory(atPath: folder.path + "/root", withIntermediateDirectories: true)
        try Self.script.write(toFile: folder.path + "/event.sh", atomically: true, encoding: .utf8)
        chmod(folder.path + "/event.sh", 0o755)
        return try LabFixtures.write(text, into: folder.path)
    }

    /// Runs udhcpc once as the machine with `mac` and returns the fields of its `bound` line.
    func lease(
        _ network: LabNetwork, mac: String, folder: TemporaryFolder, extra: [String] = []
    ) async throws -> [String: String] {
        try await network.setClientMAC(mac)
        let argv = network.client.exec(
            [
                "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-A", "1", "-i", "veth-host", "-s",
                folder.path + "/event.sh",
            ]
                + extra)
        let (status, output) = try await runTool(argv, timeout: 30)
        #expect(status.succeeded, "udhcpc as \(mac): \(output)")
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("bound ") }) else { return [:] }
        var fields: [String: String] = [:]
        for word in line.split(separator: " ").dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1)
            fields[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
        }
        return fields
    }

    /// Runs udhcpc as `mac` until it binds, then has it release its lease (SIGUSR2) and stops it.
    func releaseAfterBinding(_ network: LabNetwork, mac: String, folder: TemporaryFolder) async throws {
        try await network.setClientMAC(mac)
        let log = folder.path + "/udhcpc-release.log"
        let client = Subprocess(
            network.client.exec(
                ["udhcpc", "-f", "-n", "-t", "5", "-T", "1", "-i", "veth-host", "-s", folder.path + "/event.sh"]),
            output: .logFile(log))
        try client.start()
        func text() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let deadline = ContinuousClock.now + .seconds(20)
        while !text().contains("bound ip="), ContinuousClock.now < deadline, client.poll() == nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(client.processID, SIGUSR2)
        while !text().contains("entering released state"), ContinuousClock.now < deadline, client.poll() == nil {
            try await Task.sleep(for: .milliseconds(100))
        }
        await client.stop()
        #expect(text().contains("unicasting a release"), "\(text())")
        try await Task.sleep(for: .milliseconds(300))
    }

    @Test func leasesSurviveARestartAndKnownHostsGetTheirAddressAndBootFile() async throws {
        let folder = try TemporaryFolder()
        let config = try lab(folder)
        let network = try await LabNetwork()
        do {
            try await exercise(network, config: config, folder: folder)
        } catch {
            await network.delete()
            throw error
        }
        await network.delete()
    }

    func exercise(_ network: LabNetwork, config: String, folder: TemporaryFolder) async throws {
        let root = ["--tftp-root", folder.path + "/root"]
        var kiln = try await LabKiln(config: config, extra: root, namespace: network.server, logDir: folder.path)
        do {
            // Debian's installer runs busybox udhcpc as this: its default parameter list, no broadcast flag,
            // a client identifier (61) and the vendor class "d-i"; it gets an address and no boot file.
            let first = try await lease(network, mac: "52:54:00:00:00:01", folder: folder, extra: ["-V", "d-i"])
            #expect(first["ip"] == "192.0.2.100")
            #expect(first["subnet"] == "255.255.255.0")
            #expect(first["router"] == "192.0.2.1")
            #expect(first["dns"] == "192.0.2.1")
            #expect(first["boot_file"] == "")
            #expect(kiln.logText.contains("vendor-class=d-i [NetBoot] dhcp: lease 192.0.2.100 to 52:54:00:00:00:01"))
            let known = try await lease(
                network, mac: "52:54:00:12:34:56", folder: folder,
                extra: ["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"])
            #expect(known["ip"] == "192.0.2.17")
            #expect(known["hostname"] == "lab-07")
            #expect(known["siaddr"] == "192.0.2.1")
            #expect(known["boot_file"] == "pxelinux.0")
            let uefi = try await lease(
                network, mac: "52:54:00:00:00:03", folder: folder,
                extra: ["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"])
            #expect(uefi["boot_file"] == "grubnetx64.efi")
            // iPXE's user class "iPXE" (RFC 3004: length, then the class) is chained to its HTTP script.
            let ipxe = try await lease(
                network, mac: "52:54:00:12:34:56", folder: folder, extra: ["-x", "0x4d:0469505845"])
            #expect(ipxe["boot_file"] == "http://192.0.2.1:8080/ipxe/52:54:00:12:34:56")
            #expect(kiln.logText.contains("dhcp: lease 192.0.2.100 to 52:54:00:00:00:01"))
            let leases = try String(contentsOfFile: folder.path + "/lab.yaml.state/leases", encoding: .utf8)
            #expect(leases.contains("52:54:00:00:00:01 192.0.2.100 "))
            await kiln.stop()

            // After a restart the first machine's lease is still its own: a newcomer gets the next address,
            // and the first machine gets its old one back.
            kiln = try await LabKiln(config: config, extra: root, namespace: network.server, logDir: folder.path)
            let newcomer = try await lease(network, mac: "52:54:00:00:00:02", folder: folder)
            #expect(newcomer["ip"] == "192.0.2.102")
            let again = try await lease(network, mac: "52:54:00:00:00:01", folder: folder)
            #expect(again["ip"] == "192.0.2.100")
            // A release (udhcpc on SIGUSR2) frees the address in the lease file.
            try await releaseAfterBinding(network, mac: "52:54:00:00:00:02", folder: folder)
            let after = try String(contentsOfFile: folder.path + "/lab.yaml.state/leases", encoding: .utf8)
            #expect(!after.contains("52:54:00:00:00:02"), "\(kiln.logText.suffix(1500))")
            #expect(after.contains("52:54:00:00:00:01 192.0.2.100 "))
        } catch {
            await kiln.stop()
            throw error
        }
        await kiln.stop()
    }
}
