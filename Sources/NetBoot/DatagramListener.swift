import NIOCore
import NIOPosix
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The UDP socket a TFTP or DHCP server listens on and answers from.
///
/// NIO reads it. Answers leave through `send(_:to:)`, a sendto(2) on a duplicate of the socket's
/// descriptor, because NIO's datagram channel closes itself on any send error other than EMSGSIZE and
/// EHOSTUNREACH: an answer that a firewall rule drops (EPERM), a network that went away (ENETUNREACH) or a
/// full queue (ENOBUFS) would end the server. Here a failed send is one lost answer, which the client
/// asks for again.
final class DatagramListener: Sendable {
    typealias Envelope = AddressedEnvelope<ByteBuffer>

    /// For reading only. (No outbound side: a listener dropped without ever running, such as one bound
    /// before a later socket of the lab failed, would otherwise trap in NIO for an unfinished writer.)
    let channel: NIOAsyncChannel<Envelope, Never>
    let localAddress: SocketAddress
    /// The duplicate descriptor answers go through; -1 once closed.
    private let sender: Mutex<CInt>

    private init(channel: NIOAsyncChannel<Envelope, Never>, localAddress: SocketAddress, sender: CInt) {
        self.channel = channel
        self.localAddress = localAddress
        self.sender = Mutex(sender)
    }

    /// Binds `host:port` with SO_REUSEADDR; with `broadcast`, SO_BROADCAST; with `interface`,
    /// SO_BINDTODEVICE, so that a broadcast answer leaves through that network and not the default route's.
    /// - Throws: `NetBootError(.io)` naming the address (`what` names the service) or the interface.
    static func bind(
        _ what: String, host: String, port: Int, broadcast: Bool = false, interface: String? = nil,
        group: any EventLoopGroup
    ) async throws -> DatagramListener {
        let on = interface.map { " on \($0)" } ?? ""
        func failure(_ underlying: any Error & Sendable) -> NetBootError {
            NetBootError(
                .io, "cannot listen for \(what) on \(HostPort.format(host, port))\(on)", underlying: underlying)
        }
        if let interface, interface.utf8.count >= Int(IFNAMSIZ) || interface.isEmpty {
            throw NetBootError(.configuration, "interface name '\(interface)' is not 1 to 15 characters")
        }
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw failure(error)
        }
        // Non-blocking from the start: NIO does not make an adopted datagram socket so, and the duplicate shares
        // the flag.
        let type = SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue
        let descriptor = socket(address.protocol.rawValue, Int32(type), 0)
        guard descriptor >= 0 else { throw failure(systemError("socket")) }
        var sender: CInt = -1
        do {
            try setOption(descriptor, SO_REUSEADDR, "SO_REUSEADDR")
            if broadcast { try setOption(descriptor, SO_BROADCAST, "SO_BROADCAST") }
            if let interface {
                let result = interface.withCString {
                    setsockopt(descriptor, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(interface.utf8.count + 1))
                }
                guard result == 0 else { throw systemError("setsockopt(SO_BINDTODEVICE)") }
            }
            let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
            guard bound == 0 else { throw systemError("bind") }
            sender = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            guard sender >= 0 else { throw systemError("fcntl(F_DUPFD_CLOEXEC)") }
        } catch {
            Glibc.close(descriptor)
            throw failure(error)
        }
        let channel: NIOAsyncChannel<Envelope, Never>
        do {
            // NIO owns `descriptor` from here. The async channel is made in the initializer, before the socket
            // reads anything. (The async form of `withBoundSocket` fails in NIO 2.101 with "operation
            // unsupported": it registers through the `Channel` protocol's default, not the datagram channel's.)
            let slot = ChannelSlot()
            let adopted = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let wrapped = try NIOAsyncChannel<Envelope, Never>(wrappingChannelSynchronously: channel)
                        slot.channel.withLock { $0 = wrapped }
                    }
                }
                .withBoundSocket(descriptor).get()
            guard let wrapped = slot.channel.withLock({ $0 }) else {
                adopted.close(promise: nil)
                throw NetBootError(.io, "the datagram channel was not set up")
            }
            channel = wrapped
        } catch {
            Glibc.close(sender)
            throw failure(error)
        }
        guard let local = channel.channel.localAddress else {
            Glibc.close(sender)
            channel.channel.close(promise: nil)
            throw failure(NetBootError(.io, "the socket has no address"))
        }
        return DatagramListener(channel: channel, localAddress: local, sender: sender)
    }

    /// Turns a boolean socket option on.
    private static func setOption(_ descriptor: CInt, _ option: CInt, _ name: String) throws {
        var on: CInt = 1
        guard setsockopt(descriptor, SOL_SOCKET, option, &on, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw systemError("setsockopt(\(name))")
        }
    }

    /// The system call that failed and errno's text: `bind: Address already in use`.
    private static func systemError(_ call: String, _ code: CInt = errno) -> NetBootError {
        NetBootError(.io, "\(call): \(Errno(rawValue: code))")
    }

    /// Sends one datagram without waiting (a full socket buffer is an error, not a wait).
    /// - Throws: `NetBootError(.io)` with sendto(2)'s error (`sendto: Operation not permitted`).
    func send(_ data: ByteBuffer, to address: SocketAddress) throws {
        let failure: CInt? = sender.withLock { descriptor in
            guard descriptor >= 0 else { return EBADF }
            while true {
                let sent = data.withUnsafeReadableBytes { bytes in
                    address.withSockAddr {
                        sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, socklen_t($1))
                    }
                }
                if sent >= 0 { return nil }
                if errno != EINTR { return errno }
            }
        }
        if let failure { throw Self.systemError("sendto", failure) }
    }

    /// Stops listening: `channel`'s reads end. Idempotent.
    func close() {
        // The duplicate goes first: while it is open the port stays bound.
        sender.withLock { descriptor in
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
        channel.channel.close(promise: nil)
    }
}

/// Hands the async channel made in a channel initializer back to the caller.
private final class ChannelSlot: Sendable {
    let channel = Mutex<NIOAsyncChannel<DatagramListener.Envelope, Never>?>(nil)
}
