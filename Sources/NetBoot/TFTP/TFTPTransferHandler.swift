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

    /// The first wait for the ACK of an OACK: longer than the client's timeout, because atftp aborts on an
    /// OACK that comes again after it has acknowledged one; its own repeated ACK should come first.
    var optionAcknowledgement: TimeAmount { .nanoseconds(clientTimeout.nanoseconds * 3 / 2) }
}

/// One read transfer on its own socket (the server's transfer ID, RFC 1350 section 4), run on the
/// channel's event loop so that the per-packet path has no thread hops.
final class TFTPTransferHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let client: SocketAddress
    private let source: TFTPSource
    private var readAhead: TFTPReadAhead
    private var window: TFTPSendWindow
    private let optionAcknowledgement: [TFTPOption]
    private var awaitingOptionAck: Bool
    private let done: EventLoopPromise<TFTPTransferOutcome>
    private let timing: TFTPRetransmission
    /// DATA packets handed to the kernel in one write with UDP segmentation offload; 1 without it.
    private let segmentsPerWrite: Int

    private var finished = false
    private var lastProgress = NIODeadline.now()
    private var retransmitTimeout: TimeAmount
    private var smoothedRoundTrip: TimeAmount?
    private var roundTripVariation: Int64 = 0
    private var sentAt = NIODeadline.now()
    private var sentOnce = true
    private var deadline = NIODeadline.distantFuture
    private var timerArmed = false
    private var timerFiresAt = NIODeadline.distantFuture
    private var timer: Scheduled<Void>?

    init(
        client: SocketAddress, source: TFTPSource, parameters: TFTPTransferParameters, timing: TFTPRetransmission,
        segmentsPerWrite: Int = 1, done: EventLoopPromise<TFTPTransferOutcome>
    ) {
        self.segmentsPerWrite = segmentsPerWrite
        self.client = client
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
        // The ACK, nearly every packet of a transfer, is read in place: opcode 4, then the block (big-endian).
        let data = envelope.data
        if data.readableBytes == 4,
            data.getInteger(at: data.readerIndex, endianness: .big, as: UInt16.self)
                == TFTPPacket.Opcode.acknowledgement.rawValue,
            let block = data.getInteger(at: data.readerIndex + 2, endianness: .big, as: UInt16.self)
        {
            acknowledged(block, context: context)
            return
        }
        switch try? TFTPPacket.decode(data) {
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

    private func sendOptionAcknowledgement(context: ChannelHandlerContext) {
        let packet = TFTPPacket.optionAcknowledgement(optionAcknowledgement)
        context.writeAndFlush(
            wrapOutboundOut(
                AddressedEnvelope(remoteAddress: client, data: packet.encoded(allocator: context.channel.allocator))),
            promise: nil)
        sentAt = .now()
        arm(context: context)
    }

    private func send(_ blocks: ClosedRange<Int>, context: ChannelHandlerContext, rearm: Bool = true) {
        do {
            // With segmentation offload, several DATA packets (each header and block, all but the file's
            // last one a full block) go down as one buffer that the kernel cuts into datagrams of
            // `4 + blockSize` bytes: one trip through the network stack per batch instead of per block.
            let batch = segmentsPerWrite > 1 ? segmentsPerWrite : 1
            var first = blocks.lowerBound
            while first <= blocks.upperBound {
                let last = min(blocks.upperBound, first + batch - 1)
                let start = window.byteRange(of: first, size: source.size).lowerBound
                let end = window.byteRange(of: last, size: source.size).upperBound
                var buffer = context.channel.allocator.buffer(capacity: 4 * (last - first + 1) + end - start)
                for block in first...last {
                    buffer.writeInteger(TFTPPacket.Opcode.data.rawValue, endianness: .big)
                    buffer.writeInteger(TFTPSendWindow.wireNumber(block), endianness: .big)
                    try readAhead.read(window.byteRange(of: block, size: source.size), from: source, into: &buffer)
                }
                let metadata =
                    last > first
                    ? AddressedEnvelope<ByteBuffer>.Metadata(
                        ecnState: .transportNotCapable, packetInfo: nil, segmentSize: 4 + window.blockSize) : nil
                context.write(
                    wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: buffer, metadata: metadata)),
                    promise: nil)
                first = last + 1
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
        if timerArmed {
            // A later timer is fine (it re-arms itself when it fires early); an earlier deadline needs a new one.
            guard deadline < timerFiresAt else { return }
            timer?.cancel()
        }
        schedule(context: context)
    }

    private func schedule(context: ChannelHandlerContext) {
        timerArmed = true
        timerFiresAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
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
        guard NIODeadline.now() - lastProgress < timing.patience else {
            finish(.timedOut, context: context)
            return
        }
        retransmitTimeout = min(timing.backoffCap, retransmitTimeout * 2)
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
        timer?.cancel()
        done.succeed(outcome)
        context.close(promise: nil)
    }
}
