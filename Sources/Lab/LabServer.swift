import Foundation
import Logging
import NIOCore
import NIOPosix
import NetBoot
import Synchronization

/// Everything `kiln serve --config` runs for one lab: TFTP and HTTP over the boot root and the lab's
/// generated files, and proxyDHCP or a full DHCP server, with the lab file watched and reloaded.
package final class LabServer: Sendable {
    package let files: LabBootFiles
    private let listeners: Mutex<Listeners>
    /// Where `run()` takes servers bound after it started (a lab file that moved them) and failures.
    private let events: Mutex<AsyncStream<Event>.Continuation?>
    private let root: BootRoot
    private let generated: ChainedFiles
    private let tftpConfiguration: TFTPServerConfiguration?
    private let logger: Logger
    private let pollInterval: Duration

    /// The sockets serving now, and what they were bound for. A reload compares the lab file with the
    /// latter, not with the previous file, so that a socket that could not be bound is tried again at the
    /// next change of the file.
    private struct Listeners: Sendable {
        var tftp: TFTPServer?
        var http: HTTPBootServer?
        var dhcp: DHCPServer?
        var proxy: [ProxyDHCPServer]
        var tftpAddress: HostPort?
        var httpAddress: HostPort?
        /// Nil while DHCP is off because its sockets could not be bound.
        var dhcpBinding: DHCPBinding?
    }

    /// What DHCP's sockets depend on.
    private struct DHCPBinding: Sendable, Equatable {
        var mode: LabConfig.DHCPMode
        var interface: String?
        var address: IPv4Address

        init(_ config: LabConfig) {
            mode = config.dhcp.mode
            interface = config.interface
            address = config.address
        }
    }

    private enum Event: Sendable {
        case start(@Sendable () async throws -> Void)
        case failed(any Error)
    }

    package var tftp: TFTPServer? { listeners.withLock { $0.tftp } }
    package var http: HTTPBootServer? { listeners.withLock { $0.http } }
    package var dhcp: DHCPServer? { listeners.withLock { $0.dhcp } }
    package var proxy: [ProxyDHCPServer] { listeners.withLock { $0.proxy } }

    /// Binds every socket the lab file asks for.
    /// - Parameters:
    ///   - root: the boot root (the unpacked boot loaders and installers).
    ///   - extraFiles: providers asked before the lab's own (a package mirror, for instance).
    ///   - tftpLimits: limits on TFTP windows and concurrent transfers.
    /// - Throws: `NetBootError` naming the address that cannot be bound or the state that cannot be read.
    package init(
        config: LabConfig, root: BootRoot, services: LabServices = LabServices(),
        extraFiles: [any BootFileProvider] = [], tftpConfiguration: TFTPServerConfiguration? = nil, logger: Logger,
        pollInterval: Duration = .seconds(1)
    ) async throws {
        files = try LabBootFiles(config: config, services: services, logger: logger)
        generated = ChainedFiles(extraFiles + [files])
        self.root = root
        self.tftpConfiguration = tftpConfiguration
        self.logger = logger
        self.pollInterval = pollInterval
        events = Mutex(nil)
        let tftp = try await Self.bindTFTP(config, root: root, generated: generated, tftpConfiguration, logger: logger)
        let http = try await Self.bindHTTP(config, root: root, generated: generated, logger: logger)
        let (dhcp, proxy) = try await Self.bindDHCP(config, logger: logger)
        listeners = Mutex(
            Listeners(
                tftp: tftp, http: http, dhcp: dhcp, proxy: proxy, tftpAddress: config.tftp, httpAddress: config.http,
                dhcpBinding: DHCPBinding(config)))
        // Whichever DHCP server is bound at the time: a reload may replace it.
        files.setLeaseTable { [weak self] in
            guard let leases = self?.dhcp?.leases.leases else { return [:] }
            return leases.mapValues(\.address)
        }
    }

    static func bindTFTP(
        _ config: LabConfig, root: BootRoot, generated: ChainedFiles, _ tftpConfiguration: TFTPServerConfiguration?,
        logger: Logger
    ) async throws -> TFTPServer? {
        guard let address = config.tftp else { return nil }
        var configuration = tftpConfiguration ?? TFTPServerConfiguration(root: root)
        configuration.root = root
        configuration.generated = generated
        return try await Self.anyAddress(address) { host in
            try await TFTPServer.bind(host: host, port: address.port, configuration: configuration, logger: logger)
        }
    }

    static func bindHTTP(
        _ config: LabConfig, root: BootRoot, generated: ChainedFiles, logger: Logger
    ) async throws -> HTTPBootServer? {
        guard let address = config.http else { return nil }
        return try await Self.anyAddress(address) { host in
            try await HTTPBootServer.bind(
                host: host, port: address.port, root: root, generated: generated,
                contentTypes: LabStatus.contentTypes, logger: logger)
        }
    }

    /// The DHCP sockets the lab's mode asks for; none stays bound when one cannot be.
    static func bindDHCP(_ config: LabConfig, logger: Logger) async throws -> (DHCPServer?, [ProxyDHCPServer]) {
        let loaders = Self.loaders(config)
        let hostLoaders = Self.hostLoaders(config)
        func proxy(port: Int) async throws -> ProxyDHCPServer {
            try await ProxyDHCPServer.bind(
                host: "0.0.0.0", port: port, interface: config.interface, serverAddress: config.address,
                loaders: loaders, hostLoaders: hostLoaders, logger: logger)
        }
        switch config.dhcp.mode {
        case .off:
            return (nil, [])
        case .proxy:
            let beside = try await proxy(port: 67)
            do {
                return (nil, [beside, try await proxy(port: 4011)])
            } catch {
                beside.stopListening()
                throw error
            }
        case .server:
            guard let settings = Self.dhcpSettings(config) else {
                throw NetBootError(.configuration, "dhcp mode 'server' needs a range")
            }
            let dhcp = try await DHCPServer.bind(interface: config.interface, settings: settings, logger: logger)
            do {
                // PXE firmware may still ask the boot server on 4011 (PXE 2.1 section 2.2.5).
                return (dhcp, [try await proxy(port: 4011)])
            } catch {
                dhcp.stopListening()
                throw error
            }
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
    package static func loaders(_ config: LabConfig, _ choice: LabConfig.Loaders? = nil) -> BootLoaders {
        let choice = choice ?? config.loaders
        return BootLoaders(
            bios: choice.bios == .pxelinux ? "pxelinux.0" : "undionly.kpxe",
            uefi64: choice.uefi == .grub ? BootArchitecture.x86_64.grubNetImage : "ipxe.efi",
            // GRUB whatever `uefi` says: Debian's ipxe package has no arm64 EFI build.
            uefiARM64: config.architectures.contains(.aarch64) ? BootArchitecture.aarch64.grubNetImage : nil,
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
    package var summary: [String] {
        var lines: [String] = []
        if let tftp { lines.append("TFTP on \(tftp.boundAddress)") }
        if let http { lines.append("HTTP on \(http.boundAddress)") }
        if let dhcp, let address = dhcp.localAddress { lines.append("DHCP server on \(address)") }
        for server in proxy { lines.append("proxyDHCP on \(server.localAddress)") }
        return lines
    }

    /// Serves until the calling task is cancelled or a server fails. A server that a lab file change
    /// replaced ends on its own (after its transfers) and is not a failure.
    package func run() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        events.withLock { $0 = continuation }
        defer { events.withLock { $0 = nil } }
        let current = listeners.withLock { $0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let tftp = current.tftp { group.addTask { await self.supervise(tftp, "TFTP", tftp.run) } }
            if let http = current.http { group.addTask { await self.supervise(http, "HTTP", http.run) } }
            if let dhcp = current.dhcp { group.addTask { await self.supervise(dhcp, "DHCP", dhcp.run) } }
            for server in current.proxy { group.addTask { await self.supervise(server, "proxyDHCP", server.run) } }
            group.addTask {
                do {
                    try await self.watch()
                } catch {
                    continuation.yield(.failed(error))
                }
            }
            for await event in stream {
                switch event {
                case .start(let job):
                    group.addTask { try await job() }
                case .failed(let error):
                    group.cancelAll()
                    throw error
                }
            }
            group.cancelAll()
        }
    }

    /// Runs one server; its end is a failure unless a lab file change retired it.
    private func supervise(
        _ server: any AnyObject & Sendable, _ name: String, _ run: @Sendable () async throws -> Void
    ) async {
        var failure: (any Error)?
        do {
            try await run()
        } catch {
            failure = error
        }
        let serving = listeners.withLock { current in
            [current.tftp as AnyObject?, current.http, current.dhcp].contains { $0 === server }
                || current.proxy.contains { $0 === server }
        }
        guard serving, !Task.isCancelled else { return }
        let error = failure ?? NetBootError(.io, "the \(name) server stopped")
        _ = events.withLock { $0?.yield(.failed(error)) }
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
            if reload() { await rebind(to: files.config) }
        }
    }

    /// Moves the servers whose address, port, interface or DHCP mode differ from what they were bound for:
    /// the new socket is bound first, then the old one stops listening, and transfers under way on it
    /// finish. A socket that cannot be bound is logged and the old one kept (DHCP: off until the lab file
    /// changes again).
    func rebind(to config: LabConfig) async {
        let bound = listeners.withLock { $0 }
        if config.tftp != bound.tftpAddress {
            do {
                let server = try await Self.bindTFTP(
                    config, root: root, generated: generated, tftpConfiguration, logger: logger)
                let previous = listeners.withLock { current in
                    defer {
                        current.tftp = server
                        current.tftpAddress = config.tftp
                    }
                    return current.tftp
                }
                if let server { launch(server, "TFTP", server.run) }
                previous?.stopListening()
                logger.notice("lab: TFTP \(server.map { "now on \($0.boundAddress)" } ?? "off")")
            } catch {
                logger.error("lab: \(error); TFTP stays where it was")
            }
        }
        if config.http != bound.httpAddress {
            do {
                let server = try await Self.bindHTTP(config, root: root, generated: generated, logger: logger)
                let previous = listeners.withLock { current in
                    defer {
                        current.http = server
                        current.httpAddress = config.http
                    }
                    return current.http
                }
                if let server { launch(server, "HTTP", server.run) }
                previous?.stopListening()
                logger.notice("lab: HTTP \(server.map { "now on \($0.boundAddress)" } ?? "off")")
            } catch {
                logger.error("lab: \(error); HTTP stays where it was")
            }
        }
        if DHCPBinding(config) != bound.dhcpBinding {
            // DHCP's ports stay the same (67, 4011): the old sockets go first. Leases are on disk already.
            let previous = listeners.withLock { current in
                defer {
                    current.dhcp = nil
                    current.proxy = []
                    current.dhcpBinding = nil
                }
                return current
            }
            previous.dhcp?.stopListening()
            for server in previous.proxy { server.stopListening() }
            do {
                let (dhcp, proxy) = try await Self.bindDHCP(config, logger: logger)
                listeners.withLock { current in
                    current.dhcp = dhcp
                    current.proxy = proxy
                    current.dhcpBinding = DHCPBinding(config)
                }
                if let dhcp { launch(dhcp, "DHCP", dhcp.run) }
                for server in proxy { launch(server, "proxyDHCP", server.run) }
                logger.notice("lab: DHCP now \(config.dhcp.mode.rawValue)")
            } catch {
                logger.error("lab: \(error); DHCP is off until the lab file changes")
            }
        }
    }

    private func launch(
        _ server: any AnyObject & Sendable, _ name: String, _ run: @escaping @Sendable () async throws -> Void
    ) {
        _ = events.withLock { $0?.yield(.start({ await self.supervise(server, name, run) })) }
    }

    /// Reads the lab file again now.
    @discardableResult
    package func reload() -> Bool {
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
        if let dhcp, let settings = Self.dhcpSettings(config) { dhcp.update(settings) }
        logger.notice("lab: reloaded \(config.path): \(config.hosts.count) hosts")
        return true
    }
}
