import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The UDP socket DHCP servers listen on: broadcast allowed, and tied to one interface when named
/// (SO_BINDTODEVICE), so that a reply broadcast to 255.255.255.255 leaves through the lab's network and
/// not the default route's.
enum DHCPSocket {
    typealias Envelope = AddressedEnvelope<ByteBuffer>

    static func bind(
        host: String, port: Int, interface: String?, group: any EventLoopGroup
    ) async throws -> NIOAsyncChannel<Envelope, Envelope> {
        if let interface, interface.utf8.count >= 16 || interface.isEmpty {
            throw NetBootError(.configuration, "interface name '\(interface)' is not 1 to 15 characters")
        }
        do {
            // The async channel is made in the initializer, before the socket reads anything, as the
            // TFTP and HTTP servers do it.
            return try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_broadcast), value: 1)
                .bind(host: host, port: port) { channel in
                    tie(channel, to: interface).flatMapThrowing {
                        try NIOAsyncChannel<Envelope, Envelope>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            let on = interface.map { " on \($0)" } ?? ""
            throw NetBootError(.io, "cannot listen for DHCP on \(HostPort.format(host, port))\(on)", underlying: error)
        }
    }

    /// SO_BINDTODEVICE, when an interface is named.
    private static func tie(_ channel: any Channel, to interface: String?) -> EventLoopFuture<Void> {
        guard let interface else { return channel.eventLoop.makeSucceededVoidFuture() }
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(NetBootError(.io, "cannot tie the DHCP socket to \(interface)"))
        }
        // IFNAMSIZ (16) bytes, NUL-padded, as SO_BINDTODEVICE reads them.
        var name = [CChar](repeating: 0, count: 16)
        for (index, byte) in interface.utf8.enumerated() { name[index] = CChar(bitPattern: byte) }
        let value:
            (
                CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
                CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar
            ) = (
                name[0], name[1], name[2], name[3], name[4], name[5], name[6], name[7],
                name[8], name[9], name[10], name[11], name[12], name[13], name[14], name[15]
            )
        return provider.unsafeSetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_BINDTODEVICE), value: value)
    }
}
