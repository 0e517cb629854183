import Logging
import NIOCore
import NIOPosix

/// A proxyDHCP responder on one UDP socket: port 67 beside the lab's DHCP server, or port 4011 where
/// PXE clients send their boot-server REQUEST (PXE 2.1 section 2.2.4). Answers only network-boot requests
/// (`ProxyDHCP.reply`), never gives an address.
package final class ProxyDHCPServer: Sendable {
    package let localAddress: SocketAddress
    private let socket: DatagramListener

    /// Closes the socket; `run()` returns.
    package func stopListening() { socket.close() }
    private let serverAddress: IPv4Address
    private let loaders: BootLoaders
    private let hostLoaders: [MACAddress: BootLoaders]
    private let logger: Logger

    private init(
        socket: DatagramListener, serverAddress: IPv4Address, loaders: BootLoaders,
        hostLoaders: [MACAddress: BootLoaders], logger: Logger
    ) {
        self.hostLoaders = hostLoaders
        self.socket = socket
        self.localAddress = socket.localAddress
        self.serverAddress = serverAddress
        self.loaders = loaders
        self.logger = logger
    }

    /// Binds `host:port` with broadcast allowed.
    /// - Parameters:
    ///   - serverAddress: this host's IPv4 address on the lab network: the next server in replies.
    /// - Throws: `NetBootError(.io)` naming the address when it cannot be bound.
    package static func bind(
        host: String, port: Int, interface: String? = nil, serverAddress: IPv4Address, loaders: BootLoaders,
        hostLoaders: [MACAddress: BootLoaders] = [:], logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ProxyDHCPServer {
        let socket = try await DatagramListener.bind(
            "DHCP", host: host, port: port, broadcast: true, interface: interface, group: group)
        return ProxyDHCPServer(
            socket: socket, serverAddress: serverAddress, loaders: loaders, hostLoaders: hostLoaders, logger: logger)
    }

    /// Serves until the calling task is cancelled. A reply that cannot be sent is logged and the server
    /// goes on.
    package func run() async throws {
        defer { socket.close() }
        try await socket.channel.executeThenClose { inbound, _ in
            for try await envelope in inbound {
                guard let request = try? DHCPMessage.decode(envelope.data),
                    let reply = ProxyDHCP.reply(
                        to: request, server: serverAddress,
                        loaders: request.macAddress.flatMap { hostLoaders[$0] } ?? loaders)
                else { continue }
                let destination: SocketAddress
                do {
                    destination = try Self.destination(for: request, from: envelope.remoteAddress)
                } catch {
                    continue
                }
                logger.info(
                    "dhcp: proxy reply",
                    metadata: [
                        "mac": "\(request.macAddress.map { "\($0)" } ?? "?")", "file": "\(reply.bootFile)",
                        "to": "\(destination)",
                    ])
                do {
                    try socket.send(reply.encoded(), to: destination)
                } catch {
                    logger.warning("dhcp: proxy reply to \(destination) not sent: \(error)")
                }
            }
        }
    }

    /// RFC 2131 section 4.1: to the relay if there is one, to the client's own address if it has one,
    /// otherwise broadcast to port 68.
    static func destination(for request: DHCPMessage, from source: SocketAddress) throws -> SocketAddress {
        if request.relayAddress != .zero {
            return try SocketAddress(ipAddress: request.relayAddress.description, port: 67)
        }
        if let ip = source.ipAddress, ip != "0.0.0.0", let port = source.port {
            return try SocketAddress(ipAddress: ip, port: port)
        }
        return try SocketAddress(ipAddress: "255.255.255.255", port: 68)
    }
}
