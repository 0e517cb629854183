import Appliance
import Autoinstall
import Foundation
import Logging
import NetBoot
import Packages
import Synchronization

/// Hooks through which other parts of kiln change what lab hosts install from.
package struct LabServices: Sendable {
    /// The package mirror a Debian-family installer uses, or nil for the description's repos or the
    /// host's apt sources. Called for every preseed, with the host's description.
    package var mirror: @Sendable (_ appliance: Appliance) -> ArchiveSource?
    /// The installer kernel and initrd for a host, as paths in the boot root, or nil for kiln's own
    /// (the lab file's `installer:`, else Debian's netboot installer).
    package var installer:
        @Sendable (_ host: LabConfig.Host, _ appliance: Appliance) -> (kernel: String, initrd: String)?

    /// The deploy agent's kernel and initramfs on disk, or nil when kiln has none (image deploys then
    /// cannot start).
    package var agent: (kernel: String, initrd: String)?
    /// Builds the image of a host with `install: image` from its description and returns its path (the
    /// build is cached by content: a second call for the same description gives the same file).
    package var buildImage: (@Sendable (_ host: LabConfig.Host) async throws -> String)?

    package init(
        mirror: @escaping @Sendable (_ appliance: Appliance) -> ArchiveSource? = { _ in nil },
        installer:
            @escaping @Sendable (_ host: LabConfig.Host, _ appliance: Appliance) -> (
                kernel: String, initrd: String
            )? = { _, _ in nil },
        agent: (kernel: String, initrd: String)? = nil,
        buildImage: (@Sendable (_ host: LabConfig.Host) async throws -> String)? = nil
    ) {
        self.mirror = mirror
        self.installer = installer
        self.agent = agent
        self.buildImage = buildImage
    }
}

/// Every file a lab needs that is compiled when asked for: boot-loader configurations per host,
/// iPXE scripts, preseeds and kickstarts rendered from the hosts' descriptions, and the endpoint an
/// installer calls when it is done (`installed/<mac>`, HTTP only).
///
/// Holds the current lab file; `update` swaps it, and what is compiled afterwards follows the new one
/// while transfers already under way keep the bytes they started with.
package final class LabBootFiles: BootFileProvider {
    struct Current: Sendable {
        var config: LabConfig
        var state: LabState
        var deploys: DeployRecords
        var images: DeployImages
    }

    let current: Mutex<Current>
    package let services: LabServices
    let logger: Logger
    /// Counters for `/metrics`.
    package let metrics = LabMetrics()
    /// The addresses DHCP leased (server mode), for checking who asks for an image.
    let leaseTable = Mutex<(@Sendable () -> [MACAddress: IPv4Address])?>(nil)
    /// The address each host's answers went to first, where neither a lease nor a fixed address
    /// names one (proxy DHCP, or another DHCP server); cleared when the host reports its install done.
    let answerAddresses = Mutex<[MACAddress: String]>([:])
    /// Installer hosts whose installer was handed out since kiln started (for the status page).
    let bootedInstallers = Mutex<[MACAddress: Double]>([:])
    /// Image builds under way or done, by description (`install: image`).
    let builds = Mutex<[String: Task<String, any Error>]>([:])
    /// Host-supplied installers are served under `hosts/<name>/`.
    static let hostInstallerFolder = "hosts"

    /// - Throws: `NetBootError` when the state folder cannot be read.
    package init(config: LabConfig, services: LabServices = LabServices(), logger: Logger) throws {
        current = Mutex(Self.current(config, state: try LabState(directory: config.stateDirectory)))
        self.services = services
        self.logger = logger
    }

    static func current(_ config: LabConfig, state: LabState) -> Current {
        Current(
            config: config, state: state, deploys: DeployRecords(directory: config.stateDirectory),
            images: DeployImages(stateDirectory: config.stateDirectory))
    }

    /// Tells kiln where DHCP's leases are (server mode), so that an image goes only to its host's address.
    package func setLeaseTable(_ table: @escaping @Sendable () -> [MACAddress: IPv4Address]) {
        leaseTable.withLock { $0 = table }
    }

    /// The current leases, by MAC address (empty unless kiln is the lab's DHCP server).
    var leases: [MACAddress: IPv4Address] { leaseTable.withLock { $0 }?() ?? [:] }

    /// The lab file in use.
    package var config: LabConfig { current.withLock { $0.config } }

    /// The installed-hosts record in use.
    package var state: LabState { current.withLock { $0.state } }

    /// Takes a new lab file (a reload).
    /// - Throws: `NetBootError` when its state folder cannot be read; the old file stays in use.
    package func update(_ config: LabConfig) throws {
        let old = current.withLock { $0 }
        if old.config.stateDirectory == config.stateDirectory {
            current.withLock { $0.config = config }
        } else {
            let fresh = Self.current(config, state: try LabState(directory: config.stateDirectory))
            current.withLock { $0 = fresh }
        }
    }

    /// What the host with this MAC address boots now.
    /// - Parameter firmware: the architecture of the boot loader that asks, when it is known (GRUB's
    ///   platform folder, pxelinux); a known host whose lab entry names another is sent to its disk.
    package func action(for mac: MACAddress, firmware: BootArchitecture? = nil) -> BootAction {
        let (config, state) = current.withLock { ($0.config, $0.state) }
        guard let host = config.host(mac) else { return .localDisk }
        if state.isInstalled(mac) { return .localDisk }
        if let firmware, firmware != host.arch {
            logger.error(
                "lab: \(host.name) boots as \(firmware.rawValue), but the lab file makes it \(host.arch.rawValue) (\(host.mark)): give it 'arch: \(firmware.rawValue)' and run kiln serve --config \(config.path) --prepare",
                metadata: ["mac": "\(mac)"])
            return .localDisk
        }
        if host.install == .image { return deployAction(for: host) }
        guard let base = config.httpBase else {
            logger.error("lab: \(host.name) cannot install: HTTP is off, and installers fetch their answers over it")
            return .localDisk
        }
        let appliance: Appliance
        do {
            appliance = try loadAppliance(host)
        } catch {
            logger.error("lab: \(host.name): \(error)")
            return .localDisk
        }
        let files: (kernel: String, initrd: String)
        if let chosen = services.installer(host, appliance) {
            files = chosen
        } else if host.installer != nil {
            files = (
                "\(Self.hostInstallerFolder)/\(host.name)/linux", "\(Self.hostInstallerFolder)/\(host.name)/initrd"
            )
        } else if appliance.os.name == .debian, let version = appliance.os.majorVersion {
            files = BootFileTree.installerPaths(.init(version: version, architecture: host.arch))
        } else {
            logger.error(
                "lab: \(host.name): kiln has no network installer for \(appliance.os.name.rawValue) \(appliance.os.version); give the host an 'installer' (kernel and initrd)"
            )
            return .localDisk
        }
        let arguments = Self.kernelArguments(host: host, appliance: appliance, httpBase: base)
        return .install(
            name: host.name, InstallerBoot(kernel: files.kernel, initrd: files.initrd, arguments: arguments))
    }

    /// The installer's kernel command line: where its answers are, the console, the lab's extra arguments.
    static func kernelArguments(host: LabConfig.Host, appliance: Appliance, httpBase: String) -> String {
        var words: [String]
        let mac = host.mac.pxelinuxName.dropFirst(3)
        switch appliance.os.name.family {
        case .debian:
            let hostname = appliance.effectiveHostname
            let short = hostname.split(separator: ".").first.map(String.init) ?? hostname
            let domain = hostname.split(separator: ".").dropFirst().joined(separator: ".")
            words = [
                "auto=true", "priority=critical", "url=\(httpBase)/preseed/\(mac)", "interface=auto",
                "hostname=\(short)", "domain=\(domain)",
            ]
        case .redHat:
            words = ["inst.ks=\(httpBase)/kickstart/\(mac)", "inst.text", "ip=dhcp"]
        }
        // An arm64 machine's serial port is board-specific (ttyAMA0 on a PL011, ttyS0 on others): its
        // firmware names it (ACPI SPCR or the device tree's stdout-path), and the kernel follows that
        // only when the command line names no console.
        if let console = appliance.console, host.arch == .x86_64 { words += ["console=tty0", "console=\(console)"] }
        if let extra = host.kernelArgs { words.append(extra) }
        return words.joined(separator: " ")
    }

    /// The host's description with the lab's name as its host name.
    func loadAppliance(_ host: LabConfig.Host) throws -> Appliance {
        guard let description = host.description else {
            throw NetBootError(.configuration, "\(host.name) has no description, only an image")
        }
        var appliance: Appliance
        do {
            appliance = try ApplianceLoader().load(description)
        } catch {
            throw NetBootError(.configuration, error.description)
        }
        appliance.hostname = host.name
        return appliance
    }

    package func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        switch client.transport {
        case .tftp: metrics.tftpRequests.add(1, ordering: .relaxed)
        case .http: metrics.httpRequests.add(1, ordering: .relaxed)
        }
        let parts = path.split(separator: "/").map(String.init)
        guard let last = parts.last else { return nil }
        let (config, state) = current.withLock { ($0.config, $0.state) }
        if parts.count == 2 && parts[0] == "pxelinux.cfg" {
            if last == "default" { return bytes(BootMenus.pxelinux(.localDisk)) }
            guard last.hasPrefix("01-"), let mac = MACAddress(String(last.dropFirst(3))) else { return nil }
            return bytes(BootMenus.pxelinux(logged(action(for: mac, firmware: .x86_64), mac, "pxelinux")))
        }
        if last == "grub.cfg" { return bytes(BootMenus.grubEntry()) }
        if last.hasPrefix("grub.cfg-") {
            var name = last.dropFirst("grub.cfg-".count)
            if name.hasPrefix("01-") { name = name.dropFirst(3) }
            guard let mac = MACAddress(String(name)) else { return nil }
            // BootMenus.grubEntry sends an arm64 GRUB to its platform folder; every other GRUB kiln
            // hands out is x86-64's.
            let firmware: BootArchitecture =
                parts.dropLast().last == "\(BootArchitecture.aarch64.grubCPU)-efi" ? .aarch64 : .x86_64
            let action = logged(action(for: mac, firmware: firmware), mac, "grub")
            return bytes(BootMenus.grub(action, server: config.address, architecture: firmware))
        }
        guard client.transport == .http || parts.first == "ipxe" || last == "boot.ipxe" else { return nil }
        let base = config.httpBase ?? "http://\(config.address)"
        if parts == ["boot.ipxe"] { return bytes(BootMenus.ipxeEntry(httpBase: base)) }
        if parts.first == "deploy" { return try await deployFile(parts, client: client) }
        if parts.count == 1, let page = statusFile(last) { return page }
        guard parts.count == 2, let mac = MACAddress(last) else { return nil }
        switch parts[0] {
        case "ipxe":
            return bytes(BootMenus.ipxe(logged(action(for: mac), mac, "ipxe"), httpBase: base))
        case "preseed", "kickstart":
            guard client.transport == .http, let host = config.host(mac) else { return nil }
            try authorizeAnswers(for: host, path: path, client: client)
            return bytes(try answers(for: host, kind: parts[0], httpBase: base))
        case "installed":
            guard client.transport == .http, let host = config.host(mac) else { return nil }
            try authorizeAnswers(for: host, path: path, client: client)
            try state.markInstalled(mac, name: host.name)
            _ = answerAddresses.withLock { $0.removeValue(forKey: mac) }
            logger.notice(
                "lab: \(host.name) finished installing; it boots from its disk from now on",
                metadata: ["mac": "\(mac)", "state": "\(state.file)"])
            return bytes("ok: \(host.name) is installed\n")
        default:
            return nil
        }
    }

    /// A host's answers hold its password hashes and files, and `installed/<mac>` ends its install:
    /// both go only to the host's own address. That is its DHCP lease (kiln as the lab's DHCP server),
    /// else its fixed `address:`, else the address that first asked for them since kiln started or
    /// since the host's last install (as deploys bind their token).
    /// - Throws: `NetBootError(.refused)`, which the HTTP server answers with 403.
    func authorizeAnswers(for host: LabConfig.Host, path: String, client: BootClient) throws {
        let peer = Self.ipv4Text(client.address)
        if let expected = leases[host.mac] ?? host.address {
            guard expected.description == peer else {
                throw NetBootError(
                    .refused, "\(path) is \(host.name)'s, at \(expected), and was asked for from \(peer)")
            }
            return
        }
        guard client.address != nil else {
            throw NetBootError(.refused, "\(path) is \(host.name)'s, and the asker's address is unknown")
        }
        let bound = answerAddresses.withLock { bound in
            if let first = bound[host.mac] { return first }
            bound[host.mac] = peer
            return peer
        }
        guard bound == peer else {
            throw NetBootError(
                .refused, "\(path) is \(host.name)'s, first asked for from \(bound), now from \(peer)")
        }
    }

    package func diskFile(at path: String, for client: BootClient) async throws -> String? {
        let parts = path.split(separator: "/").map(String.init)
        if parts.count == 2, parts[0] == Self.agentFolder, let agent = services.agent {
            switch parts[1] {
            case "vmlinuz": return agent.kernel
            case "initrd.img": return agent.initrd
            default: return nil
            }
        }
        guard parts.count == 3, parts[0] == Self.hostInstallerFolder,
            let host = config.host(named: parts[1]), let installer = host.installer
        else { return nil }
        switch parts[2] {
        case "linux": return installer.kernel
        case "initrd": return installer.initrd
        default: return nil
        }
    }

    /// The preseed or kickstart for a host, with the call that records the end of its install.
    func answers(for host: LabConfig.Host, kind: String, httpBase: String) throws -> String {
        let appliance = try loadAppliance(host)
        let done = "\(httpBase)/installed/\(host.mac.pxelinuxName.dropFirst(3))"
        let text: String
        do {
            switch appliance.os.name.family {
            case .debian:
                // The lab mirror serves amd64 only: arm64 installers use the host's apt sources.
                let labMirror = host.arch == .x86_64 ? services.mirror(appliance) : nil
                let mirror = try labMirror.map { [$0] } ?? AptSources.load()
                let preseed = try PreseedRenderer(hostSources: mirror).render(appliance)
                text = Self.addingLateCommand("wget -q -O /dev/null \(done)", to: preseed)
            case .redHat:
                let kickstart = try KickstartRenderer().render(appliance)
                text = kickstart + "\n%post\ncurl -fsS -o /dev/null \(done) || wget -q -O /dev/null \(done)\n%end\n"
            }
        } catch {
            throw NetBootError(
                .configuration,
                "\(host.description ?? host.name): \((error as? AutoinstallError)?.message ?? "\(error)")")
        }
        logger.notice(
            "lab: \(appliance.os.name.family == .debian ? "preseed" : "kickstart") for \(host.name) rendered from \(host.description ?? "")",
            metadata: ["mac": "\(host.mac)"])
        return text
    }

    /// Adds a command at the end of the preseed's `late_command` (making one when there is none).
    static func addingLateCommand(_ command: String, to preseed: String) -> String {
        var lines = preseed.components(separatedBy: "\n")
        if let start = lines.firstIndex(where: { $0.hasPrefix("d-i preseed/late_command string") }) {
            var end = start
            while end + 1 < lines.count && lines[end].hasSuffix("\\") { end += 1 }
            if lines[end].hasSuffix("string") {
                lines[end] += " " + command
            } else {
                lines[end] += "; \\"
                lines.insert("    " + command, at: end + 1)
            }
        } else {
            let end = lines.firstIndex(of: "# End") ?? lines.count
            lines.insert(
                contentsOf: ["# Tell kiln this host is installed", "d-i preseed/late_command string \(command)", ""],
                at: end)
        }
        return lines.joined(separator: "\n")
    }

    func logged(_ action: BootAction, _ mac: MACAddress, _ loader: String) -> BootAction {
        switch action {
        case .localDisk:
            logger.info("lab: \(mac) boots its local disk", metadata: ["loader": "\(loader)"])
        case .install(let name, let boot):
            let deploy = boot.kernel.hasPrefix(Self.agentFolder + "/")
            if !deploy { bootedInstallers.withLock { $0[mac] = Date().timeIntervalSince1970 } }
            logger.notice(
                "lab: \(name) boots \(deploy ? "the deploy agent" : "the installer")",
                metadata: ["mac": "\(mac)", "loader": "\(loader)", "kernel": "\(boot.kernel)"])
        }
        return action
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}
