import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// kiln's full DHCP server against busybox's udhcpc, in two network namespaces the test makes.
@Suite(
    "kiln serve --config: the DHCP server with a real client", .serialized,
    .requires(.root, .program("ip"), .program("udhcpc"))
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

    func lab(_ folder: TemporaryFolder, mode: String = "server") throws -> String {
        let text = LabFixtures.namespaceLab(interface: "veth-kiln", http: ":8080", mode: mode)
        try FileManager.default.createDirectory(atPath: folder.path + "/root", withIntermediateDirectories: true)
        try Self.script.write(toFile: folder.path + "/event.sh", atomically: true, encoding: .utf8)
        chmod(folder.path + "/event.sh", 0o755)
        return try LabFixtures.write(text, into: folder.path)
    }

    /// Runs udhcpc once as the machine with `mac` and returns the fields of its `bound` line.
    func lease(
        _ network: LabNetwork, mac: String, folder: TemporaryFolder, extra: [String] = []
    ) async throws -> [String: String] {
        let (succeeded, fields, output) = try await attempt(network, mac: mac, folder: folder, extra: extra)
        #expect(succeeded, "udhcpc as \(mac): \(output)")
        return fields
    }

    /// Runs udhcpc once as `mac` with `tries` DISCOVERs a second apart; returns whether it got a lease, the
    /// fields of its `bound` line and its output.
    func attempt(
        _ network: LabNetwork, mac: String, folder: TemporaryFolder, extra: [String] = [], tries: Int = 5
    ) async throws -> (succeeded: Bool, fields: [String: String], output: String) {
        try await network.setClientMAC(mac)
        let argv = network.client.exec(
            [
                "udhcpc", "-f", "-q", "-n", "-t", "\(tries)", "-T", "1", "-A", "1", "-i", "veth-host", "-s",
                folder.path + "/event.sh",
            ]
                + extra)
        let (status, output) = try await runTool(argv, timeout: 30)
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("bound ") }) else {
            return (status.succeeded, [:], output)
        }
        var fields: [String: String] = [:]
        for word in line.split(separator: " ").dropFirst() {
            let pair = word.split(separator: "=", maxSplits: 1)
            fields[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
        }
        return (status.succeeded, fields, output)
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
            #expect(logHasLine(kiln.logText, "dhcp: lease 192.0.2.100 to 52:54:00:00:00:01", "vendor-class=d-i"))
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

    /// Waits up to 10 s for kiln's log to hold `text` `count` times.
    func waitForLog(_ kiln: LabKiln, _ text: String, count: Int = 1) async throws -> Bool {
        for _ in 0..<100 {
            if kiln.logText.components(separatedBy: text).count > count { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Runs `body` with a lab network and kiln serving `config` in it; both end afterwards.
    func withLab(
        _ config: String, folder: TemporaryFolder, _ body: (LabNetwork, LabKiln) async throws -> Void
    ) async throws {
        let network = try await LabNetwork()
        do {
            let kiln = try await LabKiln(
                config: config, extra: ["--tftp-root", folder.path + "/root"], namespace: network.server,
                logDir: folder.path)
            do {
                try await body(network, kiln)
            } catch {
                await kiln.stop()
                throw error
            }
            await kiln.stop()
        } catch {
            await network.delete()
            throw error
        }
        await network.delete()
    }

    /// A firewall rule that drops kiln's DHCP replies makes each send fail (EPERM): kiln logs it and goes
    /// on, and once the rule is gone the next client gets its lease from the same process.
    @Test(.requires(.program("nft")))
    func repliesThatCannotBeSentAreLoggedAndTheServerGoesOn() async throws {
        let folder = try TemporaryFolder()
        try await withLab(try lab(folder), folder: folder) { network, kiln in
            try await network.server.drop(["udp", "sport", "67"], on: .output)
            let blocked = try await attempt(network, mac: "52:54:00:00:00:01", folder: folder, tries: 2)
            #expect(!blocked.succeeded, "\(blocked.output)")
            let log = kiln.logText
            #expect(
                log.contains("dhcp: reply to 52:54:00:00:00:01 at ")
                    && log.contains("not sent: sendto: Operation not permitted"), "\(log.suffix(1500))")
            #expect(kiln.process.poll() == nil, "kiln serve still runs: \(log.suffix(1500))")

            try await network.server.allow(.output)
            let next = try await lease(network, mac: "52:54:00:00:00:02", folder: folder)
            // 192.0.2.100 stays held for 00:01, whose offer kiln made but could not send (60 s).
            #expect(next["ip"] == "192.0.2.101")
            #expect(
                kiln.logText.contains("dhcp: lease 192.0.2.101 to 52:54:00:00:00:02"), "\(kiln.logText.suffix(1500))")
        }
    }

    /// `dhcp.mode` and `interface` changed in the lab file while kiln serves: off gives no answer, server
    /// leases, proxy answers PXE clients without leasing, off again is silent. An interface that is not
    /// there yet leaves DHCP off, and the next change of the file, once it is there, binds it.
    @Test func modeAndInterfaceChangesTakeEffectWithoutARestart() async throws {
        let folder = try TemporaryFolder()
        let config = try lab(folder, mode: "off")
        func change(mode: String, interface: String = "veth-kiln") throws {
            let text = LabFixtures.namespaceLab(interface: interface, http: ":8080", mode: mode)
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        }
        let pxe = ["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"]
        try await withLab(config, folder: folder) { network, kiln in
            let off = try await attempt(network, mac: "52:54:00:00:00:01", folder: folder, tries: 2)
            #expect(!off.succeeded, "\(off.output)")
            #expect(!kiln.logText.contains("dhcp: offer"))

            try change(mode: "server")
            #expect(try await waitForLog(kiln, "lab: DHCP now server"), "\(kiln.logText.suffix(1500))")
            let leased = try await lease(network, mac: "52:54:00:00:00:01", folder: folder)
            #expect(leased["ip"] == "192.0.2.100")

            // An interface that does not exist yet: DHCP is off. Once it is there, the next change binds it.
            try change(mode: "server", interface: "veth-late")
            #expect(
                try await waitForLog(kiln, "DHCP is off until the lab file changes"), "\(kiln.logText.suffix(1500))")
            for argv in [
                ["ip", "link", "set", "veth-kiln", "down"], ["ip", "link", "set", "veth-kiln", "name", "veth-late"],
                ["ip", "link", "set", "veth-late", "up"],
            ] {
                try await Subprocess(network.server.exec(argv)).run()
            }
            try change(mode: "server", interface: "veth-late")
            #expect(try await waitForLog(kiln, "lab: DHCP now server", count: 2), "\(kiln.logText.suffix(1500))")
            let late = try await lease(network, mac: "52:54:00:00:00:02", folder: folder)
            #expect(late["ip"] == "192.0.2.101")

            try change(mode: "proxy", interface: "veth-late")
            #expect(try await waitForLog(kiln, "lab: DHCP now proxy"), "\(kiln.logText.suffix(1500))")
            let proxied = try await attempt(network, mac: "52:54:00:00:00:03", folder: folder, extra: pxe, tries: 2)
            #expect(proxied.fields["ip"] == nil || proxied.fields["ip"] == "0.0.0.0", "\(proxied.output)")
            #expect(kiln.logText.contains("mac=52:54:00:00:00:03"), "\(kiln.logText.suffix(1500))")
            #expect(!kiln.logText.contains("to 52:54:00:00:00:03 for"))

            try change(mode: "off", interface: "veth-late")
            #expect(try await waitForLog(kiln, "lab: DHCP now off"), "\(kiln.logText.suffix(1500))")
            let answers = kiln.logText.components(separatedBy: "dhcp: ").count
            let silent = try await attempt(network, mac: "52:54:00:00:00:04", folder: folder, extra: pxe, tries: 2)
            #expect(!silent.succeeded, "\(silent.output)")
            #expect(kiln.logText.components(separatedBy: "dhcp: ").count == answers, "\(kiln.logText.suffix(1500))")
        }
    }
}
