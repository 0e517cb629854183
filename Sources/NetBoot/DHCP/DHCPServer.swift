import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// What kiln's full DHCP server hands out.
package struct DHCPServerSettings: Sendable, Equatable {
    /// kiln's own address: the server identifier and the next server for network boots.
    package var server: IPv4Address
    package var pool: ClosedRange<IPv4Address>
    package var netmask: IPv4Address
    package var router: IPv4Address?
    package var dns: [IPv4Address]
    /// Seconds.
    package var leaseTime: Int
    package var leaseFile: String
    /// Known hosts' fixed addresses.
    package var fixed: [MACAddress: IPv4Address]
    /// Known hosts' names (option 12).
    package var names: [MACAddress: String]
    package var loaders: BootLoaders
    /// Known hosts whose boot loaders differ from `loaders`.
    package var hostLoaders: [MACAddress: BootLoaders]

    package init(
        server: IPv4Address, pool: ClosedRange<IPv4Address>, netmask: IPv4Address, router: IPv4Address? = nil,
        dns: [IPv4Address] = [], leaseTime: Int = 3600, leaseFile: String, fixed: [MACAddress: IPv4Address] = [:],
        names: [MACAddress: String] = [:], loaders: BootLoaders = BootLoaders(),
        hostLoaders: [MACAddress: BootLoaders] = [:]
    ) {
        self.hostLoaders = hostLoaders
        self.server = server
        self.pool = pool
        self.netmask = netmask
        self.router = router
        self.dns = dns
        self.leaseTime = leaseTime
        self.leaseFile = leaseFile
        self.fixed = fixed
        self.names = names
        self.loaders = loaders
    }
}

/// A DHCP server for an isolated lab network (RFC 2131): DISCOVER/OFFER, REQUEST/ACK or NAK, RELEASE,
/// DECLINE and INFORM; fixed addresses for known hosts; the network-boot file for PXE firmware (option
/// 93) and iPXE (user class); leases written to disk atomically after each change and read back at start.
package final class DHCPServer: Sendable {
    private struct State: Sendable {
        var settings: DHCPServerSettings
        var leases: DHCPLeases
    }

    private let state: Mutex<State>
    private let logger: Logger
    private let socket: DatagramListener?
    package let localAddress: SocketAddress?

    /// A server without a socket, for `reply(to:now:)`.
    /// - Throws: `NetBootError` when the lease file exists and cannot be read.
    package convenience init(settings: DHCPServerSettings, logger: Logger) throws {
        try self.init(settings: settings, logger: logger, socket: nil)
    }

    private init(settings: DHCPServerSettings, logger: Logger, socket: DatagramListener?) throws {
        var leases = DHCPLeases(pool: settings.pool, fixed: settings.fixed)
        try leases.load(from: settings.leaseFile)
        state = Mutex(State(settings: settings, leases: leases))
        self.logger = logger
        self.socket = socket
        localAddress = socket?.localAddress
    }

    /// Binds `host:port` (normally `0.0.0.0:67`) with broadcast allowed, on `interface` alone when one is
    /// named (so that broadcast replies leave through it), and reads the lease file.
    /// - Throws: `NetBootError(.io)` naming the address or interface.
    package static func bind(
        host: String = "0.0.0.0", port: Int = 67, interface: String?, settings: DHCPServerSettings, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> DHCPServer {
        let socket = try await DatagramListener.bind(
            "DHCP", host: host, port: port, broadcast: true, interface: interface, group: group)
        do {
            return try DHCPServer(settings: settings, logger: logger, socket: socket)
        } catch {
            socket.close()
            throw error
        }
    }

    /// Takes new settings (a lab file reload), keeping every lease.
    package func update(_ settings: DHCPServerSettings) {
        state.withLock { state in
            state.leases = DHCPLeases(pool: settings.pool, fixed: settings.fixed, keeping: state.leases)
            state.settings = settings
        }
    }

    /// The current leases.
    package var leases: DHCPLeases { state.withLock { $0.leases } }

    /// Closes the socket; `run()` returns. Every lease is in the lease file already.
    package func stopListening() { socket?.close() }

    /// Serves until the calling task is cancelled. A reply that cannot be sent (a firewall rule, a network
    /// gone down) is logged and the server goes on: the client asks again.
    package func run() async throws {
        guard let socket else { throw NetBootError(.configuration, "DHCP server has no socket") }
        defer { socket.close() }
        try await socket.channel.executeThenClose { inbound, _ in
            for try await envelope in inbound {
                let request: DHCPMessage
                do {
                    request = try DHCPMessage.decode(envelope.data)
                } catch {
                    logger.info("dhcp: message from \(envelope.remoteAddress.logText) ignored: \(error)")
                    continue
                }
                guard request.op == DHCPMessage.bootRequest,
                    let reply = reply(to: request, now: Int64(Date().timeIntervalSince1970)),
                    let destination = try? Self.destination(for: reply, request: request)
                else { continue }
                do {
                    try socket.send(reply.encoded(), to: destination)
                } catch {
                    let mac = request.macAddress.map { "\($0)" } ?? "?"
                    logger.warning("dhcp: reply to \(mac) at \(destination) not sent: \(error)")
                }
            }
        }
    }

    /// The answer to one client message, with the lease book updated (and saved) as it implies; nil when
    /// nothing is to be sent.
    package func reply(to request: DHCPMessage, now: Int64) -> DHCPMessage? {
        guard let mac = request.macAddress, let type = request.options.messageType else {
            logger.info("dhcp: a request without an Ethernet address or a message type ignored")
            return nil
        }
        // The client's vendor class in the log tells firmware ("PXEClient:..."), iPXE and an installer's
        // own client ("d-i") apart.
        let client: Logger.Metadata = request.options.vendorClass.map { ["vendor-class": "\($0)"] } ?? [:]
        let requested = request.options.address(.requestedAddress)
        return state.withLock { state -> DHCPMessage? in
            let settings = state.settings
            let serverID = request.options.address(.serverIdentifier)
            let seconds = Int64(settings.leaseTime)
            switch type {
            case .discover:
                guard let address = state.leases.offer(for: mac, requested: requested, now: now) else {
                    logger.warning("dhcp: no free address for \(mac): the pool \(settings.pool) is full")
                    return nil
                }
                state.leases.reserve(address, for: mac, now: now)
                logger.info("dhcp: offer \(address) to \(mac)", metadata: client)
                if let boot = NetworkBootRequest(request),
                    boot.bootFile(settings.hostLoaders[mac] ?? settings.loaders) == nil
                {
                    logger.info("dhcp: no boot file for \(mac): \(boot.unservedReason)", metadata: client)
                }
                return answer(.offer, to: request, address: address, settings: settings)
            case .request:
                // RFC 2131 4.3.2: a server identifier means SELECTING; another server's means the client
                // chose it.
                if let serverID, serverID != settings.server { return nil }
                guard let address = requested ?? (request.clientAddress == .zero ? nil : request.clientAddress) else {
                    return nak(request, settings: settings, reason: "no requested address")
                }
                do {
                    try state.leases.bind(address, to: mac, seconds: seconds, now: now)
                } catch let error as NetBootError {
                    // INIT-REBOOT for an address from another network: NAK only what is ours to judge.
                    logger.info("dhcp: NAK \(mac) asking for \(address): \(error.message)")
                    return nak(request, settings: settings, reason: error.message)
                } catch {
                    return nak(request, settings: settings, reason: "\(error)")
                }
                save(state.leases, to: settings.leaseFile)
                logger.notice(
                    "dhcp: lease \(address) to \(mac)\(settings.names[mac].map { " (\($0))" } ?? "") for \(seconds) s",
                    metadata: client)
                return answer(.ack, to: request, address: address, settings: settings)
            case .release:
                guard serverID == nil || serverID == settings.server else { return nil }
                state.leases.release(mac)
                save(state.leases, to: settings.leaseFile)
                logger.info("dhcp: \(mac) released its address")
                return nil
            case .decline:
                guard serverID == nil || serverID == settings.server, let requested else { return nil }
                state.leases.decline(requested, seconds: seconds, now: now)
                save(state.leases, to: settings.leaseFile)
                logger.warning("dhcp: \(mac) declined \(requested): something else answers on it")
                return nil
            case .inform:
                return answer(.ack, to: request, address: nil, settings: settings)
            default:
                return nil
            }
        }
    }

    private func save(_ leases: DHCPLeases, to path: String) {
        do {
            try FileManager.default.createDirectory(
                atPath: String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]), withIntermediateDirectories: true)
            try leases.save(to: path)
        } catch {
            logger.error("dhcp: \(error)")
        }
    }

    private func nak(_ request: DHCPMessage, settings: DHCPServerSettings, reason: String) -> DHCPMessage {
        var options = DHCPOptions()
        options.messageType = .nak
        options.setAddress(.serverIdentifier, settings.server)
        options[DHCPOptionCode(rawValue: 56)] = Array(reason.utf8.prefix(200))
        var reply = DHCPMessage(
            op: DHCPMessage.bootReply, transactionID: request.transactionID, clientHardware: request.clientHardware,
            options: options)
        reply.hardwareType = request.hardwareType
        reply.hardwareLength = request.hardwareLength
        reply.relayAddress = request.relayAddress
        // RFC 2131 4.3.2: a NAK is broadcast.
        reply.flags = 0x8000
        return reply
    }

    /// An OFFER or ACK: the address (none for INFORM), the network's options, and the boot file for
    /// network-booting clients.
    private func answer(
        _ type: DHCPMessageType, to request: DHCPMessage, address: IPv4Address?, settings: DHCPServerSettings
    ) -> DHCPMessage {
        var options = DHCPOptions()
        options.messageType = type
        options.setAddress(.serverIdentifier, settings.server)
        if address != nil {
            options.setUInt32(.leaseTime, UInt32(settings.leaseTime))
            options.setUInt32(.renewalTime, UInt32(settings.leaseTime / 2))
            options.setUInt32(.rebindingTime, UInt32(settings.leaseTime * 7 / 8))
        }
        options.setAddress(.subnetMask, settings.netmask)
        if let router = settings.router { options.setAddress(.router, router) }
        if !settings.dns.isEmpty { options[.domainNameServer] = settings.dns.flatMap(\.bytes) }
        if let mac = request.macAddress, let name = settings.names[mac] { options.setString(.hostName, name) }
        var reply = DHCPMessage(
            op: DHCPMessage.bootReply, transactionID: request.transactionID, clientHardware: request.clientHardware)
        let loaders = request.macAddress.flatMap { settings.hostLoaders[$0] } ?? settings.loaders
        if let boot = NetworkBootRequest(request), let file = boot.bootFile(loaders) {
            // Not for iPXE: an offer that says PXEClient makes it also wait for a proxyDHCP answer on 4011.
            if request.options.vendorClass?.hasPrefix("PXEClient") == true
                && !(boot.isIPXE && loaders.ipxeScript != nil)
            {
                options.setString(.vendorClass, "PXEClient")
                // PXE vendor option 6 (discovery control) = 8: boot from the file named here.
                options[.vendorSpecific] = [6, 1, 8, 255]
            }
            if let id = boot.machineID { options[.clientMachineID] = id }
            options.setString(.tftpServerName, settings.server.description)
            options.setString(.bootFileName, file)
            reply.serverAddress = settings.server
            reply.bootFile = file
        }
        reply.options = options
        reply.hardwareType = request.hardwareType
        reply.hardwareLength = request.hardwareLength
        reply.flags = request.flags
        reply.relayAddress = request.relayAddress
        reply.clientAddress = type == .ack ? request.clientAddress : .zero
        reply.yourAddress = address ?? .zero
        return reply
    }

    /// RFC 2131 4.1: to the relay, else to a client that has an address, else broadcast.
    static func destination(for reply: DHCPMessage, request: DHCPMessage) throws -> SocketAddress {
        if request.relayAddress != .zero {
            return try SocketAddress(ipAddress: request.relayAddress.description, port: 67)
        }
        if reply.options.messageType != .nak, request.clientAddress != .zero {
            return try SocketAddress(ipAddress: request.clientAddress.description, port: 68)
        }
        return try SocketAddress(ipAddress: "255.255.255.255", port: 68)
    }
}
