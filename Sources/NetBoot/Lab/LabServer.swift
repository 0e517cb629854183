import Foundation
import Logging
import NIOCore
import NIOPosix

/// Everything `kiln serve --config` runs for one lab: TFTP and HTTP over the boot root and the lab's
/// generated files, and proxyDHCP or a full DHCP server, with the lab file watched and reloaded.
public final class LabServer: Sendable {
    public let files: LabBootFiles
    public let tftp: TFTPServer?
    public let http: HTTPBootServer?
    public let dhcp: DHCPServer?
    public let proxy: [ProxyDHCPServer]
    private let logger: Logger
    private let pollInterval: Duration

    /// Binds every socket the lab file asks for.
    /// - Parameters:
    ///   - root: the boot root (the unpacked boot loaders and installers).
    ///   - extraFiles: providers asked before the lab's own (a package mirror, for instance).
    ///   - tftpLimits: limits on TFTP windows and concurrent transfers.
    /// - Throws: `NetBootError` naming the address that cannot be bound or the state that cannot be read.
    public init(
        config: LabConfig, root: BootRoot, services: LabServices = LabServices(),
        extraFiles: [any BootFileProvider] = [], tftpConfiguration: TFTPServerConfiguration? = nil, logger: Logger,
        pollInterval: Duration = .seconds(1)
    ) async throws {
        files = try LabBootFiles(config: config, services: services, logger: logger)
        let generated = ChainedFiles(extraFiles + [files])
        self.logger = logger
        self.pollInterval = pollInterval
        if let address = config.tftp {
            var configuration = tftpConfiguration ?? TFTPServerConfiguration(root: root)
            configuration.root = root
            configuration.generated = generated
            tftp = try await Self.anyAddress(address) { host in
                try await TFTPServer.bind(host: host, port: address.port, configuration: configuration, logger: logger)
            }
        } else {
            tftp = nil
        }
        if let address = config.http {
            http = try await Self.anyAddress(address) { host in
                try await HTTPBootServer.bind(
                    host: host, port: address.port, root: root, generated: generated, logger: logger)
            }
        } else {
            http = nil
        }
        switch config.dhcp.mode {
        case .off:
            dhcp = nil
            proxy = []
        case .proxy:
            dhcp = nil
            let loaders = Self.loaders(config)
            proxy = [
                try await ProxyDHCPServer.bind(
                    host: "0.0.0.0", port: 67, interface: config.interface, serverAddress: config.address,
                    loaders: loaders, hostLoaders: Self.hostLoaders(config), logger: logger),
                try await ProxyDHCPServer.bind(
                    host: "0.0.0.0", port: 4011, interface: config.interface, serverAddress: config.address,
                    loaders: loaders, hostLoaders: Self.hostLoaders(config), logger: logger),
            ]
        case .server:
            guard let settings = Self.dhcpSettings(config) else {
                throw NetBootError(.configuration, "dhcp mode 'server' needs a range")
            }
            dhcp = try await DHCPServer.bind(interface: config.interface, settings: settings, logger: logger)
            // PXE firmware may still ask the boot server on 4011 (PXE 2.1 section 2.2.5).
            proxy = [
                try await ProxyDHCPServer.bind(
                    host: "0.0.0.0", port: 4011, interface: config.interface, serverAddress: config.address,
                    loaders: settings.loaders, hostLoaders: settings.hostLoaders, logger: logger)
            ]
        }
    }

    /// Binds `address`; "every address" (`::`) falls back to IPv4's `0.0.0.0` where IPv6 is not available
    /// (a lab network namespace whose bridge has no IPv6 address yet).
    static func anyAddress<T>(_ address: HostPort, _ bind: (String) async throws -> T) async throws -> T {
        do {
            return try await bind(address.host)
        } catch  where address.host == "::" {
            return try await bind("0.0.0.0")
        }
    }

    /// What DHCP names as the first stage for each kind of client.
    public static func loaders(_ config: LabConfig, _ choice: LabConfig.Loaders? = nil) -> BootLoaders {
        let choice = choice ?? config.loaders
        return BootLoaders(
            bios: choice.bios == .pxelinux ? "pxelinux.0" : "undionly.kpxe",
            uefi64: choice.uefi == .grub ? "grubnetx64.efi" : "ipxe.efi",
            ipxeScript: choice.ipxeScript ? config.httpBase.map { "\($0)/ipxe/{mac}" } : nil)
    }

    /// The hosts whose boot loaders differ from the lab's.
    static func hostLoaders(_ config: LabConfig) -> [MACAddress: BootLoaders] {
        var result: [MACAddress: BootLoaders] = [:]
        for host in config.hosts { if let choice = host.loaders { result[host.mac] = loaders(config, choice) } }
        return result
    }

    static func dhcpSettings(_ config: LabConfig) -> DHCPServerSettings? {
        guard let pool = config.dhcp.range else { return nil }
        var fixed: [MACAddress: IPv4Address] = [:]
        var names: [MACAddress: String] = [:]
        for host in config.hosts {
            if let address = host.address { fixed[host.mac] = address }
            names[host.mac] = host.name
        }
        return DHCPServerSettings(
            server: config.address, pool: pool, netmask: config.dhcp.netmask, router: config.dhcp.router,
            dns: config.dhcp.dns, leaseTime: config.dhcp.leaseTime, leaseFile: config.dhcp.leaseFile, fixed: fixed,
            names: names, loaders: loaders(config), hostLoaders: hostLoaders(config))
    }

    /// One line per socket, for the command to print.
    public var summary: [String] {
        var lines: [String] = []
        if let tftp { lines.append("TFTP on \(tftp.boundAddress)") }
        if let http { lines.append("HTTP on \(http.boundAddress)") }
        if let dhcp, let address = dhcp.localAddress { lines.append("DHCP server on \(address)") }
        for server in proxy { lines.append("proxyDHCP on \(server.localAddress)") }
        return lines
    }

    /// Serves until the calling task is cancelled or a server fails.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let tftp { group.addTask { try await tftp.run() } }
            if let http { group.addTask { try await http.run() } }
            if let dhcp { group.addTask { try await dhcp.run() } }
            for server in proxy { group.addTask { try await server.run() } }
            group.addTask { try await self.watch() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Polls the lab file and takes a changed one; a broken one is logged and the old one kept.
    func watch() async throws {
        let path = files.config.path
        var stamp = FileStamp(path)
        while !Task.isCancelled {
            try await Task.sleep(for: pollInterval)
            let now = FileStamp(path)
            guard now != stamp else { continue }
            stamp = now
            reload()
        }
    }

    /// Reads the lab file again now.
    @discardableResult
    public func reload() -> Bool {
        let old = files.config
        let config: LabConfig
        do {
            config = try LabConfig.load(old.path)
        } catch let error as NetBootError {
            logger.error(
                "lab: \(old.path) changed but has errors; keeping the previous configuration\n\(error.message)")
            return false
        } catch {
            logger.error("lab: \(old.path): \(error); keeping the previous configuration")
            return false
        }
        do {
            try files.update(config)
        } catch {
            logger.error("lab: \(error); keeping the previous configuration")
            return false
        }
        if config.tftp != old.tftp || config.http != old.http || config.dhcp.mode != old.dhcp.mode
            || config.interface != old.interface || config.address != old.address
        {
            logger.warning("lab: addresses, ports, interface or DHCP mode changed: restart kiln serve to apply them")
        }
        if let dhcp, let settings = Self.dhcpSettings(config) { dhcp.update(settings) }
        logger.notice("lab: reloaded \(config.path): \(config.hosts.count) hosts")
        return true
    }
}
