import Foundation
import NIOCore
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// How a read transfer ended.
enum TFTPTransferOutcome: Sendable, Equatable {
    /// The client acknowledged the last block.
    case completed
    /// The client stopped acknowledging; the server gave up after its retries.
    case timedOut
    /// The client sent an ERROR.
    case abortedByClient(TFTPErrorCode, String)
    /// The file could not be read, the socket failed, or the server stopped.
    case failed(String)
}

/// Retransmission timing for one transfer.
///
/// The wait adapts to the measured round trip (four times the smoothed value, within `minimum` and the
/// client's timeout), so that a lost packet on a LAN costs milliseconds, not the seconds that RFC 2349
/// counts in. Each timeout in a row doubles the wait, past the client's own timeout and up to
/// `backoffCap`: some clients (atftp) restart their timer on every packet, even one they ignore, so a
/// server that kept repeating itself faster than that timer would never hear the ACK the client repeats
/// when its timer runs out.
struct TFTPRetransmission: Sendable {
    /// The client's timeout: the negotiated `timeout` (RFC 2349) or the server's assumption.
    var clientTimeout: TimeAmount = .seconds(1)
    /// The first wait for data, before any round trip is measured.
    var initial: TimeAmount = .milliseconds(250)
    /// The shortest wait, however fast the client answers.
    var minimum: TimeAmount = .milliseconds(25)
    /// The longest wait after repeated timeouts.
    var backoffCap: TimeAmount = .seconds(6)
    /// How long the client may stay silent before the transfer is abandoned.
    var patience: TimeAmount = .seconds(20)
    /// The longest smoothed round trip for which an ACK is awaited by polling the socket before sleeping;
    /// zero never polls.
    var busyPollLimit: TimeAmount = .microseconds(200)

    /// The shortest wait before an OACK is sent again.
    ///
    /// atftp aborts when a second OACK reaches it after it has acknowledged one, and repeats its ACK only
    /// every 5 s, whatever `timeout` it negotiated; GRUB never repeats its ACK and keeps reading for about
    /// 30 s, so it needs the OACK again. Waiting longer than atftp's timer serves both: a lost ACK is
    /// repeated by atftp before the OACK comes again, and GRUB still hears it in time. (A lost OACK costs
    /// nothing here: every client repeats its RRQ, which starts a fresh transfer.)
    var optionAcknowledgementFloor: TimeAmount = .seconds(6)

    /// The wait for the ACK of an OACK: past the client's timeout and atftp's fixed timer.
    var optionAcknowledgement: TimeAmount {
        max(optionAcknowledgementFloor, .nanoseconds(clientTimeout.nanoseconds * 3 / 2))
    }
}

/// One read transfer on its own socket (the server's transfer ID, RFC 1350 section 4) and its own thread,
/// as tftpd-hpa gives each transfer a process: the per-packet path is one send and one receive, with no
/// event loop between them.
///
/// Lock-step TFTP runs at the pace of its round trip, and on a fast link (a virtual machine on the same
/// host, a quiet LAN) most of a round trip is waking up: the client's CPU to take the DATA, then the
/// server's to take the ACK. While the client answers within `busyPollLimit`, the transfer awaits its ACK
/// by polling the socket for a few round trips before it sleeps, which takes the server's wake-up off
/// every round trip. It costs CPU, so it is done only while no more transfers run than the machine has
/// cores beyond the first; the others sleep on the socket.
final class TFTPTransfer: @unchecked Sendable {
    // @unchecked: `run()` owns every stored property on its own thread; `cancel()`, from any thread, only
    // sets the atomic flag and shuts the socket down under `socketOpen`'s lock.

    /// Transfers running in this process, to decide whether one may poll.
    private static let running = Atomic<Int>(0)
    /// Transfers that may poll at once: one core is left to the clients and everything else.
    private static let pollingAllowance = max(0, ProcessInfo.processInfo.activeProcessorCount - 1)
    /// The shortest and longest time spent polling for one ACK.
    private static let pollFloor: TimeAmount = .microseconds(50)
    /// UDP_SEGMENT from linux/udp.h: the segment size for UDP segmentation offload, set on the socket.
    private static let udpSegmentOption: Int32 = 103

    private let socket: Int32
    private var clientAddress = sockaddr_storage()
    private let clientLength: socklen_t
    private let source: TFTPSource
    private var readAhead: TFTPReadAhead
    private var window: TFTPSendWindow
    private let optionAcknowledgement: [TFTPOption]
    private var awaitingOptionAck: Bool
    private let timing: TFTPRetransmission
    /// DATA packets handed to the kernel in one send with UDP segmentation offload; 1 without it.
    private var segmentsPerWrite: Int
    /// The size of one DATA datagram, what segmentation offload cuts a send into.
    private let segmentSize: Int

    private let cancelled = Atomic<Bool>(false)
    private let socketOpen = Mutex<Bool>(true)

    private var packet = ByteBufferAllocator().buffer(capacity: 0)
    private var incoming = [UInt8](repeating: 0, count: 2048)
    private var lastProgress = NIODeadline.now()
    private var retransmitTimeout: TimeAmount
    private var smoothedRoundTrip: TimeAmount?
    private var roundTripVariation: Int64 = 0
    private var sentAt = NIODeadline.now()
    private var sentOnce = true
    private var deadline = NIODeadline.distantFuture

    /// Opens the transfer's socket on `local` (the server's address, port 0 for a new transfer ID).
    /// - Throws: `NetBootError(.io)` when the socket cannot be made or bound.
    init(
        client: SocketAddress, local: SocketAddress, source: TFTPSource, parameters: TFTPTransferParameters,
        timing: TFTPRetransmission, segmentsPerWrite: Int = 1
    ) throws {
        let family = local.withSockAddr { address, _ in Int32(address.pointee.sa_family) }
        let descriptor = Glibc.socket(family, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw NetBootError(.io, "cannot open a transfer socket: \(Errno(rawValue: errno))")
        }
        guard local.withSockAddr({ bind(descriptor, $0, socklen_t($1)) }) == 0 else {
            let reason = "\(Errno(rawValue: errno))"
            close(descriptor)
            throw NetBootError(.io, "cannot bind a transfer socket to \(local): \(reason)")
        }
        socket = descriptor
        var storage = sockaddr_storage()
        clientLength = client.withSockAddr { address, length in
            withUnsafeMutableBytes(of: &storage) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
            }
            return socklen_t(length)
        }
        clientAddress = storage
        self.source = source
        self.window = TFTPSendWindow(
            size: source.size, blockSize: parameters.blockSize, windowSize: parameters.windowSize)
        self.readAhead = TFTPReadAhead(
            blockSize: parameters.blockSize, minimumLength: parameters.blockSize * parameters.windowSize,
            allocator: ByteBufferAllocator())
        self.optionAcknowledgement = parameters.acknowledged
        self.awaitingOptionAck = !parameters.acknowledged.isEmpty
        self.timing = timing
        self.retransmitTimeout =
            parameters.acknowledged.isEmpty
            ? min(timing.initial, timing.clientTimeout) : timing.optionAcknowledgement
        self.segmentsPerWrite = 1
        self.segmentSize = 4 + parameters.blockSize
        if segmentsPerWrite > 1 {
            var size = Int32(4 + parameters.blockSize)
            if setsockopt(socket, Int32(IPPROTO_UDP), Self.udpSegmentOption, &size, socklen_t(MemoryLayout<Int32>.size))
                == 0
            {
                self.segmentsPerWrite = segmentsPerWrite
            }
        }
    }

    deinit {
        closeSocket()
    }

    /// Stops the transfer from any thread: `run()` returns `.failed` soon after.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        // A shut-down socket wakes the thread waiting on it (even an unconnected UDP one, where the call
        // itself reports ENOTCONN).
        socketOpen.withLock { open in
            if open { _ = shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }

    /// Sends the file and waits for its ACKs, blocking the calling thread until the transfer ends; closes the
    /// socket before it returns.
    func run() -> TFTPTransferOutcome {
        Self.running.add(1, ordering: .relaxed)
        defer {
            Self.running.subtract(1, ordering: .relaxed)
            closeSocket()
        }
        if awaitingOptionAck {
            sendOptionAcknowledgement()
        } else if let failure = send(window.nextWindow()) {
            return failure
        }
        while true {
            if cancelled.load(ordering: .acquiring) { return .failed("server stopped") }
            switch awaitPacket() {
            case .timeout:
                if let outcome = timedOut() { return outcome }
            case .packet(let count):
                if let outcome = received(count) { return outcome }
            case .stranger(let count, var address):
                answerStranger(count: count, address: &address)
            case .failed(let reason):
                return .failed(reason)
            }
        }
    }

    private func closeSocket() {
        socketOpen.withLock { open in
            if open {
                close(socket)
                open = false
            }
        }
    }

    // MARK: Receiving

    private enum Arrival {
        case timeout
        /// A datagram of this many bytes from the client, in `incoming`.
        case packet(Int)
        /// A datagram from another address (a stranger's transfer ID).
        case stranger(Int, sockaddr_storage)
        case failed(String)
    }

    /// The next datagram, or a timeout at `deadline`. Polls first while the client answers quickly enough
    /// and the machine has a core to spare for it; then sleeps in poll(2).
    private func awaitPacket() -> Arrival {
        if let smoothed = smoothedRoundTrip, smoothed <= timing.busyPollLimit,
            Self.running.load(ordering: .relaxed) <= Self.pollingAllowance
        {
            let budget = min(timing.busyPollLimit, max(Self.pollFloor, smoothed * 3))
            let until = min(deadline, .now() + budget)
            repeat {
                if let arrival = receive() { return arrival }
            } while NIODeadline.now() < until
        }
        while true {
            if let arrival = receive() { return arrival }
            let remaining = deadline - .now()
            guard remaining > .zero else { return .timeout }
            // Milliseconds, rounded up so that the wait never ends just before the deadline.
            let milliseconds = Int32(min(1000, (remaining.nanoseconds + 999_999) / 1_000_000))
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if cancelled.load(ordering: .acquiring) { return .failed("server stopped") }
            if ready < 0 && errno != EINTR { return .failed("poll: \(Errno(rawValue: errno))") }
        }
    }

    /// One datagram if one is waiting, without blocking; nil when none is.
    private func receive() -> Arrival? {
        var from = sockaddr_storage()
        var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = incoming.withUnsafeMutableBytes { buffer in
            withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(socket, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, &fromLength)
                }
            }
        }
        if count < 0 {
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR: return nil
            // An ICMP error queued for an earlier send: the timer deals with the loss.
            case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH: return nil
            default: return .failed("receive: \(Errno(rawValue: errno))")
            }
        }
        if count == 0 && cancelled.load(ordering: .acquiring) { return .failed("server stopped") }
        return isClient(&from) ? .packet(count) : .stranger(count, from)
    }

    /// Whether `address` is the client's: same family, address and port.
    private func isClient(_ address: inout sockaddr_storage) -> Bool {
        withUnsafeBytes(of: &address) { other in
            withUnsafeBytes(of: &clientAddress) { mine in
                let family = Int32(mine.load(as: sockaddr.self).sa_family)
                guard Int32(other.load(as: sockaddr.self).sa_family) == family else { return false }
                switch family {
                case AF_INET:
                    let a = mine.load(as: sockaddr_in.self)
                    let b = other.load(as: sockaddr_in.self)
                    return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr
                case AF_INET6:
                    // Port (offset 2, 2 bytes) and address (offset 8, 16 bytes) of a sockaddr_in6.
                    return mine[2..<4].elementsEqual(other[2..<4]) && mine[8..<24].elementsEqual(other[8..<24])
                default:
                    return false
                }
            }
        }
    }

    /// RFC 1350 section 4: a packet from an unknown transfer ID gets ERROR 5; the transfer goes on.
    private func answerStranger(count: Int, address: inout sockaddr_storage) {
        let length = socklen_t(
            Int32(address.ss_family) == AF_INET6
                ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let error = TFTPPacket.error(code: .unknownTransferID, message: "unknown transfer ID").encoded()
        error.withUnsafeReadableBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    _ = sendto(socket, bytes.baseAddress, bytes.count, 0, $0, length)
                }
            }
        }
    }

    /// Acts on a datagram from the client; returns the outcome when it ends the transfer.
    private func received(_ count: Int) -> TFTPTransferOutcome? {
        // The ACK, nearly every packet of a transfer, is read in place: opcode 4, then the block (big-endian).
        if count == 4 && incoming[0] == 0 && UInt16(incoming[1]) == TFTPPacket.Opcode.acknowledgement.rawValue {
            return acknowledged(UInt16(incoming[2]) << 8 | UInt16(incoming[3]))
        }
        switch try? TFTPPacket.decode(ByteBuffer(bytes: incoming[0..<count])) {
        case .acknowledgement(let block):
            return acknowledged(block)
        case .error(let code, let message):
            return .abortedByClient(code, message)
        default:
            // Anything else on a read transfer's socket is noise (a repeated RRQ, garbage): ignored.
            return nil
        }
    }

    private func acknowledged(_ block: UInt16) -> TFTPTransferOutcome? {
        if awaitingOptionAck {
            // RFC 2347: the client acknowledges an OACK with block 0.
            guard block == 0 else { return nil }
            awaitingOptionAck = false
            measureRoundTrip()
            return send(window.nextWindow())
        }
        switch window.receive(ack: block) {
        case .advanced:
            measureRoundTrip()
            return send(window.nextWindow())
        case .complete:
            return .completed
        case .resend:
            // The window again, on the timer already running (a duplicate ACK must not move the deadline).
            sentOnce = false
            return send(window.currentWindow, restartTimer: false)
        case .duplicate, .outOfWindow:
            return nil
        }
    }

    private func measureRoundTrip() {
        let now = NIODeadline.now()
        lastProgress = now
        // Karn's rule: a window that was sent again gives no usable sample.
        if sentOnce {
            // RFC 6298 section 2: smoothed round trip and its variation, gains 1/8 and 1/4.
            let sample = (now - sentAt).nanoseconds
            if let smoothed = smoothedRoundTrip?.nanoseconds {
                roundTripVariation = (roundTripVariation * 3 + abs(smoothed - sample)) / 4
                smoothedRoundTrip = .nanoseconds((smoothed * 7 + sample) / 8)
            } else {
                roundTripVariation = sample / 2
                smoothedRoundTrip = .nanoseconds(sample)
            }
        }
        // Progress ends the backoff: the next loss is retried at the measured pace again. A client that
        // answers irregularly (a loaded machine) gets a longer wait rather than spurious repeats.
        if let smoothed = smoothedRoundTrip {
            let wait = TimeAmount.nanoseconds(smoothed.nanoseconds + max(smoothed.nanoseconds, 4 * roundTripVariation))
            retransmitTimeout = max(timing.minimum, min(timing.clientTimeout, wait))
        }
        sentOnce = true
    }

    private func timedOut() -> TFTPTransferOutcome? {
        guard NIODeadline.now() - lastProgress < timing.patience else { return .timedOut }
        retransmitTimeout = min(timing.backoffCap, retransmitTimeout * 2)
        sentOnce = false
        if awaitingOptionAck {
            retransmitTimeout = timing.optionAcknowledgement
            sendOptionAcknowledgement()
            return nil
        }
        return send(window.currentWindow)
    }

    // MARK: Sending

    private func sendOptionAcknowledgement() {
        let acknowledgement = TFTPPacket.optionAcknowledgement(optionAcknowledgement).encoded()
        // With segmentation offload on, the kernel would cut an OACK longer than a DATA packet (a small
        // blksize and several options) into several datagrams: it goes out with offload off.
        let segmented = segmentsPerWrite > 1 && acknowledgement.readableBytes > segmentSize
        if segmented { setSegmentSize(0) }
        transmit(acknowledgement)
        if segmented { setSegmentSize(segmentSize) }
        startTimer()
    }

    private func setSegmentSize(_ size: Int) {
        var value = Int32(size)
        _ = setsockopt(socket, Int32(IPPROTO_UDP), Self.udpSegmentOption, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    private func startTimer() {
        sentAt = .now()
        deadline = sentAt + retransmitTimeout
    }

    /// Sends the DATA packets of `blocks`; returns the outcome when the file cannot be read.
    private func send(_ blocks: ClosedRange<Int>, restartTimer: Bool = true) -> TFTPTransferOutcome? {
        do {
            var first = blocks.lowerBound
            while first <= blocks.upperBound {
                // With segmentation offload, several DATA packets (each header and block, all but the file's
                // last one a full block) go down as one buffer that the kernel cuts into datagrams of
                // `4 + blockSize` bytes: one trip through the network stack per batch instead of per block.
                let last = min(blocks.upperBound, first + segmentsPerWrite - 1)
                packet.clear()
                for block in first...last {
                    packet.writeInteger(TFTPPacket.Opcode.data.rawValue, endianness: .big)
                    packet.writeInteger(TFTPSendWindow.wireNumber(block), endianness: .big)
                    try readAhead.read(window.byteRange(of: block, size: source.size), from: source, into: &packet)
                }
                if !transmit(packet) && last > first {
                    // The route refused a batch (a device without checksum offload, a smaller MTU than it
                    // said): from now on one packet per send, starting with this batch again.
                    var none: Int32 = 0
                    _ = setsockopt(socket, Int32(IPPROTO_UDP), Self.udpSegmentOption, &none, 4)
                    segmentsPerWrite = 1
                    continue
                }
                first = last + 1
            }
        } catch {
            transmit(TFTPPacket.error(code: .notDefined, message: "read error").encoded())
            return .failed("\(error)")
        }
        if restartTimer || deadline == .distantFuture { startTimer() }
        return nil
    }

    /// Sends one buffer to the client. A send the network refuses (no route for now, a firewall, a full
    /// queue) counts as a lost packet, which the timer repeats; false only when a segmented send was refused
    /// as such.
    @discardableResult
    private func transmit(_ bytes: ByteBuffer) -> Bool {
        while true {
            let sent = bytes.withUnsafeReadableBytes { buffer in
                withUnsafePointer(to: &clientAddress) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(socket, buffer.baseAddress, buffer.count, 0, $0, clientLength)
                    }
                }
            }
            if sent >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EINVAL, EIO, EMSGSIZE: return segmentsPerWrite == 1
            default: return true
            }
        }
    }
}
