import NIOCore

/// How a read transfer ended.
enum TFTPTransferOutcome: Sendable, Equatable {
    /// The client acknowledged the last block.
    case completed
    /// The client stopped acknowledging; the server gave up after its retries.
    case timedOut
    /// The client sent an ERROR.
    case abortedByClient(TFTPErrorCode, String)
    /// The file could not be read, or the socket failed.
    case failed(String)
}

/// Retransmission timing for one transfer.
struct TFTPRetransmission: Sendable {
    /// The first wait, before any round trip is measured.
    var initial: TimeAmount = .milliseconds(250)
    /// The shortest wait, however fast the client answers.
    var minimum: TimeAmount = .milliseconds(50)
    /// The longest wait: the negotiated `timeout` (RFC 2349) or the server's default.
    var maximum: TimeAmount = .seconds(1)
    /// Timeouts in a row after which the transfer is abandoned.
    var retries = 8
}

/// One read transfer on its own socket (the server's transfer ID, RFC 1350 section 4), run on the
/// channel's event loop so that the per-packet path has no thread hops.
///
/// The wait before retransmitting adapts to the measured round trip (four times the smoothed value,
/// never below `minimum` or above `maximum`, doubled after each timeout), so that a lost packet on a LAN
/// costs milliseconds, not the second that RFC 2349 counts in.
final class TFTPTransferHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let client: SocketAddress
    private let source: TFTPSource
    private var window: TFTPSendWindow
    private let optionAcknowledgement: [TFTPOption]
    private var awaitingOptionAck: Bool
    private let done: EventLoopPromise<TFTPTransferOutcome>
    private let timing: TFTPRetransmission

    private var finished = false
    private var timeouts = 0
    private var retransmitTimeout: TimeAmount
    private var smoothedRoundTrip: TimeAmount?
    private var sentAt = NIODeadline.now()
    private var sentOnce = true
    private var deadline = NIODeadline.distantFuture
    private var timerArmed = false

    init(
        client: SocketAddress, source: TFTPSource, parameters: TFTPTransferParameters, timing: TFTPRetransmission,
        done: EventLoopPromise<TFTPTransferOutcome>
    ) {
        self.client = client
        self.source = source
        self.window = TFTPSendWindow(
            size: source.size, blockSize: parameters.blockSize, windowSize: parameters.windowSize)
        self.optionAcknowledgement = parameters.acknowledged
        self.awaitingOptionAck = !parameters.acknowledged.isEmpty
        self.timing = timing
        self.retransmitTimeout = min(timing.initial, timing.maximum)
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        if awaitingOptionAck {
            sendOptionAcknowledgement(context: context)
        } else {
            send(window.nextWindow(), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failed("transfer socket closed"), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failed("socket error: \(error)"), context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == client else {
            // RFC 1350 section 4: a packet from an unknown transfer ID gets ERROR 5; the transfer goes on.
            let error = TFTPPacket.error(code: .unknownTransferID, message: "unknown transfer ID")
            context.writeAndFlush(
                wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: error.encoded())),
                promise: nil)
            return
        }
        switch try? TFTPPacket.decode(envelope.data) {
        case .acknowledgement(let block):
            acknowledged(block, context: context)
        case .error(let code, let message):
            finish(.abortedByClient(code, message), context: context)
        default:
            // Anything else on a read transfer's socket is noise (a repeated RRQ, garbage): ignored.
            break
        }
    }

    private func acknowledged(_ block: UInt16, context: ChannelHandlerContext) {
        if awaitingOptionAck {
            // RFC 2347: the client acknowledges an OACK with block 0.
            guard block == 0 else { return }
            awaitingOptionAck = false
            measureRoundTrip()
            send(window.nextWindow(), context: context)
            return
        }
        switch window.receive(ack: block) {
        case .advanced:
            measureRoundTrip()
            send(window.nextWindow(), context: context)
        case .complete:
            finish(.completed, context: context)
        case .resend:
            sentOnce = false
            send(window.currentWindow, context: context, rearm: false)
        case .duplicate, .outOfWindow:
            break
        }
    }

    private func measureRoundTrip() {
        timeouts = 0
        // Karn's rule: a window that was sent again gives no usable sample.
        if sentOnce {
            let sample = NIODeadline.now() - sentAt
            let smoothed = smoothedRoundTrip.map { .nanoseconds(($0.nanoseconds * 7 + sample.nanoseconds) / 8) } ?? sample
            smoothedRoundTrip = smoothed
            retransmitTimeout = max(timing.minimum, min(timing.maximum, .nanoseconds(smoothed.nanoseconds * 4)))
        }
        sentOnce = true
    }

    private func sendOptionAcknowledgement(context: ChannelHandlerContext) {
        let packet = TFTPPacket.optionAcknowledgement(optionAcknowledgement)
        context.writeAndFlush(
            wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: packet.encoded(allocator: context.channel.allocator))),
            promise: nil)
        sentAt = .now()
        arm(context: context)
    }

    private func send(_ blocks: ClosedRange<Int>, context: ChannelHandlerContext, rearm: Bool = true) {
        do {
            for block in blocks {
                let range = window.byteRange(of: block, size: source.size)
                var buffer = context.channel.allocator.buffer(capacity: 4 + range.count)
                buffer.writeInteger(TFTPPacket.Opcode.data.rawValue, endianness: .big)
                buffer.writeInteger(TFTPSendWindow.wireNumber(block), endianness: .big)
                try source.read(offset: range.lowerBound, length: range.count, into: &buffer)
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: buffer)), promise: nil)
            }
            context.flush()
        } catch {
            let packet = TFTPPacket.error(code: .notDefined, message: "read error")
            context.writeAndFlush(
                wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: packet.encoded())), promise: nil)
            finish(.failed("\(error)"), context: context)
            return
        }
        if rearm || !timerArmed {
            sentAt = .now()
            arm(context: context)
        }
    }

    /// Moves the deadline; one scheduled task at a time, re-armed lazily when it fires early, so that the
    /// per-window cost is a clock read rather than a cancel and a schedule.
    private func arm(context: ChannelHandlerContext) {
        deadline = .now() + retransmitTimeout
        guard !timerArmed else { return }
        schedule(context: context)
    }

    private func schedule(context: ChannelHandlerContext) {
        timerArmed = true
        context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timerArmed = false
            guard !finished else { return }
            if NIODeadline.now() < deadline {
                schedule(context: context)
            } else {
                timedOut(context: context)
            }
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        timeouts += 1
        guard timeouts <= timing.retries else {
            finish(.timedOut, context: context)
            return
        }
        retransmitTimeout = min(timing.maximum, retransmitTimeout * 2)
        sentOnce = false
        if awaitingOptionAck {
            sendOptionAcknowledgement(context: context)
        } else {
            send(window.currentWindow, context: context)
        }
    }

    private func finish(_ outcome: TFTPTransferOutcome, context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        done.succeed(outcome)
        context.close(promise: nil)
    }
}
