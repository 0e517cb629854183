import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Limits on what one HTTP client may hold of the server.
package struct HTTPLimits: Sendable, Equatable {
    /// Connections open at once, all clients together; more are closed as soon as they are accepted.
    package var maxConnections: Int
    /// From the moment a connection waits for a request (when it opens, and after each response)
    /// until that request's head and end have arrived: an idle keep-alive connection or a client that
    /// trickles its header a byte at a time is closed after this.
    package var requestTimeout: TimeAmount
    /// While a response is being sent: a client that reads nothing for this long is closed.
    package var sendTimeout: TimeAmount

    package init(
        maxConnections: Int? = nil, requestTimeout: TimeAmount = .seconds(30), sendTimeout: TimeAmount = .seconds(60)
    ) {
        self.maxConnections = maxConnections ?? HTTPLimits.defaultMaxConnections
        self.requestTimeout = requestTimeout
        self.sendTimeout = sendTimeout
    }

    /// Half of the descriptors the process may open (at most 1024), so that HTTP clients alone cannot
    /// use up what TFTP transfers, DHCP and files need.
    package static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 256 }
        return max(16, min(1024, Int(clamping: limit.rlim_cur) / 2))
    }
}

/// Closes a connection that waits too long for a request or stops reading a response.
///
/// It sits between the HTTP codec and the async channel, so it sees whole request heads and response
/// parts: the request timer runs while no request is outstanding, the send timer while written parts
/// have not reached the socket.
final class HTTPConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let limits: HTTPLimits
    /// Requests whose head arrived and whose response has not ended.
    private var outstanding = 0
    /// Response parts written and not yet on the socket.
    private var pendingWrites = 0
    private var lastProgress = NIODeadline.now()
    private var requestTimer: Scheduled<Void>?
    private var sendTimer: Scheduled<Void>?

    init(limits: HTTPLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { waitForRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        waitForRequest(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        requestTimer?.cancel()
        sendTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            outstanding += 1
        case .body:
            break
        case .end:
            // The whole request is in: what follows is the server's work, then the send timer.
            requestTimer?.cancel()
            requestTimer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var ends = false
        if case .end = unwrapOutboundIn(data) { ends = true }
        if pendingWrites == 0 { lastProgress = .now() }
        pendingWrites += 1
        let written = promise ?? context.eventLoop.makePromise()
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in
            pendingWrites -= 1
            lastProgress = .now()
            if ends {
                outstanding = max(0, outstanding - 1)
                if outstanding == 0 { waitForRequest(loopContext.value) }
            }
        }
        if sendTimer == nil { armSendTimer(context, at: lastProgress + limits.sendTimeout) }
        context.write(data, promise: written)
    }

    private func waitForRequest(_ context: ChannelHandlerContext) {
        requestTimer?.cancel()
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        requestTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.requestTimeout) { [self] in
            requestTimer = nil
            loopContext.value.close(promise: nil)
        }
    }

    private func armSendTimer(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        sendTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            sendTimer = nil
            guard pendingWrites > 0 else { return }
            let due = lastProgress + limits.sendTimeout
            if due <= .now() {
                loopContext.value.close(promise: nil)
            } else {
                armSendTimer(loopContext.value, at: due)
            }
        }
    }
}
