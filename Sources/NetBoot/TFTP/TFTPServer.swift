import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// What a TFTP server serves and how much it takes on.
package struct TFTPServerConfiguration: Sendable {
    package var root: BootRoot
    /// Files generated in memory, asked before the disk.
    package var generated: any BootFileProvider
    package var limits: TFTPLimits
    /// Transfers in flight at once, all clients together; requests beyond are dropped (the client retries).
    package var maximumTransfers: Int
    /// Transfers in flight at once from one client address.
    package var maximumTransfersPerClient: Int
    /// The client's timeout assumed when it does not negotiate `timeout`.
    package var defaultTimeout: TimeAmount
    /// How long a client may stay silent before its transfer is abandoned.
    package var patience: TimeAmount

    package init(
        root: BootRoot, generated: any BootFileProvider = GeneratedFiles.none, limits: TFTPLimits = TFTPLimits(),
        maximumTransfers: Int = 1024, maximumTransfersPerClient: Int = 64, defaultTimeout: TimeAmount = .seconds(1),
        patience: TimeAmount = .seconds(20)
    ) {
        self.root = root
        self.generated = generated
        self.limits = limits
        self.maximumTransfers = maximumTransfers
        self.maximumTransfersPerClient = maximumTransfersPerClient
        self.defaultTimeout = defaultTimeout
        self.patience = patience
    }
}

/// A read-only TFTP server (RFC 1350, 2347, 2348, 2349, 7440).
///
/// Requests arrive on the bound socket; each read request becomes a child task with its own socket on
/// an ephemeral port (its transfer ID), so a slow or lost client never holds up the others.
package final class TFTPServer: Sendable {
    private typealias Envelope = AddressedEnvelope<ByteBuffer>

    /// The address the server listens on (with the port the system chose when asked for 0).
    package let localAddress: SocketAddress
    private let socket: DatagramListener
    private let configuration: TFTPServerConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let slots: Mutex<TransferSlots>

    private init(
        socket: DatagramListener, configuration: TFTPServerConfiguration, logger: Logger, group: any EventLoopGroup
    ) {
        self.socket = socket
        self.localAddress = socket.localAddress
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.slots = Mutex(TransferSlots())
    }

    /// Binds the server's socket; `run()` then serves.
    /// - Throws: `NetBootError(.io)` naming the address when it cannot be bound.
    package static func bind(
        host: String, port: Int, configuration: TFTPServerConfiguration, logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> TFTPServer {
        let socket = try await DatagramListener.bind("TFTP", host: host, port: port, group: group)
        return TFTPServer(socket: socket, configuration: configuration, logger: logger, group: group)
    }

    /// The bound address as kiln writes it (`127.0.0.1:6969`, `[::]:69`).
    package var boundAddress: HostPort {
        HostPort(host: localAddress.ipAddress ?? "\(localAddress)", port: localAddress.port ?? 0)
    }

    /// The number of transfers in flight.
    package var activeTransfers: Int { slots.withLock { $0.total } }

    /// Closes the listening socket: no new transfer starts, the ones under way go on on their own sockets,
    /// and `run()` returns when they have ended (a lab file that moved TFTP elsewhere).
    package func stopListening() { socket.close() }

    /// Serves until the calling task is cancelled; closes the socket when it returns.
    package func run() async throws {
        defer { socket.close() }
        try await socket.channel.executeThenClose { inbound, _ in
            try await withThrowingDiscardingTaskGroup { group in
                for try await envelope in inbound {
                    guard let request = self.accept(envelope) else { continue }
                    group.addTask {
                        defer { self.slots.withLock { $0.release(request.clientKey) } }
                        await self.serve(request)
                    }
                }
            }
        }
    }

    private struct Accepted: Sendable {
        var request: TFTPRequest
        var client: SocketAddress
        var clientKey: String
    }

    /// Decides what to do with a datagram that arrived on the server's port: a read request within the
    /// caps starts a transfer; a write request is refused; anything else is dropped or answered with an
    /// ERROR, never trusted further.
    private func accept(_ envelope: Envelope) -> Accepted? {
        let client = envelope.remoteAddress
        let packet: TFTPPacket
        do {
            packet = try TFTPPacket.decode(envelope.data)
        } catch let error as NetBootError {
            logger.info(
                "tftp: malformed request",
                metadata: ["client": "\(client.logText)", "error": "\(LogText.escape(error.message))"])
            // Only what parsed as a request gets an answer; other garbage is dropped to avoid reflecting it.
            if envelope.data.readableBytes >= 2,
                let opcode = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self),
                opcode == TFTPPacket.Opcode.readRequest.rawValue || opcode == TFTPPacket.Opcode.writeRequest.rawValue
            {
                reply(.error(code: .illegalOperation, message: error.message), to: client)
            }
            return nil
        } catch {
            return nil
        }
        switch packet {
        case .readRequest(let request):
            guard envelope.data.readableBytes <= TFTPPacket.maximumRequestSize else {
                reply(.error(code: .illegalOperation, message: "request longer than 512 bytes"), to: client)
                return nil
            }
            let key = client.ipAddress ?? "\(client)"
            let admitted = slots.withLock {
                $0.reserve(
                    key, total: configuration.maximumTransfers, perClient: configuration.maximumTransfersPerClient)
            }
            guard admitted else {
                logger.warning("tftp: too many transfers, request dropped", metadata: ["client": "\(client.logText)"])
                return nil
            }
            return Accepted(request: request, client: client, clientKey: key)
        case .writeRequest(let request):
            logger.info(
                "tftp: write refused",
                metadata: ["client": "\(client.logText)", "file": "\(LogText.escape(request.filename))"])
            reply(.error(code: .accessViolation, message: "this server is read-only"), to: client)
            return nil
        default:
            return nil
        }
    }

    /// Answers from the server's port without waiting: a reply must not hold up the request loop. One that
    /// cannot be sent (a firewall rule, an address no longer reachable) is logged; the server goes on.
    private func reply(_ packet: TFTPPacket, to client: SocketAddress) {
        do {
            try socket.send(packet.encoded(), to: client)
        } catch {
            logger.warning("tftp: reply not sent", metadata: ["client": "\(client.logText)", "error": "\(error)"])
        }
    }

    private func serve(_ accepted: Accepted) async {
        var metadata: Logger.Metadata = [
            "client": "\(accepted.client.logText)", "file": "\(LogText.escape(accepted.request.filename))",
        ]
        do {
            let prepared = try await prepare(accepted)
            metadata["bytes"] = "\(prepared.source.size)"
            let outcome = try await transfer(prepared, to: accepted.client)
            switch outcome {
            case .completed:
                logger.info("tftp: sent", metadata: metadata)
            case .timedOut:
                logger.warning("tftp: client stopped answering", metadata: metadata)
            case .abortedByClient(let code, let message):
                logger.info(
                    "tftp: client aborted",
                    metadata: metadata.merging(["code": "\(code)", "message": "\(LogText.escape(message))"]) { $1 })
            case .failed(let reason):
                logger.warning(
                    "tftp: transfer failed", metadata: metadata.merging(["error": "\(LogText.escape(reason))"]) { $1 })
            }
        } catch let failure as TFTPFailure {
            logger.info(
                "tftp: refused", metadata: metadata.merging(["error": "\(LogText.escape(failure.message))"]) { $1 })
            reply(.error(code: failure.code, message: failure.message), to: accepted.client)
        } catch {
            logger.warning(
                "tftp: transfer failed", metadata: metadata.merging(["error": "\(LogText.escape("\(error)"))"]) { $1 })
        }
    }

    static let netasciiLimit = 16 << 20

    private struct Prepared: Sendable {
        var source: TFTPSource
        var parameters: TFTPTransferParameters
    }

    /// Checks the request and finds its bytes: mode, name, generated file or disk file, options.
    private func prepare(_ accepted: Accepted) async throws -> Prepared {
        let request = accepted.request
        let mode: TFTPNegotiation.Mode
        do {
            mode = try TFTPNegotiation.mode(request.mode)
        } catch let error as NetBootError {
            throw TFTPFailure(.illegalOperation, error.message)
        }
        // Options are checked before the file so that a bad option is refused whatever the name.
        do {
            _ = try TFTPNegotiation.negotiate(request.options, transferSize: nil, limits: configuration.limits)
        } catch let error as NetBootError {
            throw TFTPFailure(.optionsRefused, error.message)
        }
        let relative: String
        do {
            relative = try configuration.root.relativePath(for: request.filename)
        } catch let error as NetBootError {
            throw TFTPFailure(.accessViolation, error.message)
        }
        var source: TFTPSource
        let client = BootClient(address: accepted.client, transport: .tftp)
        if let bytes = try await configuration.generated.file(at: relative, for: client) {
            source = TFTPSource(bytes: ByteBuffer(bytes: bytes))
        } else {
            do {
                let vouched = try await configuration.generated.diskFile(at: relative, for: client)
                let opened =
                    try vouched.map { try BootRoot.openVouched($0, as: relative) }
                    ?? configuration.root.open(relative)
                source = TFTPSource(descriptor: opened.descriptor, size: opened.size)
            } catch let error as NetBootError {
                throw TFTPFailure(error.code == .notFound ? .fileNotFound : .accessViolation, error.message)
            }
        }
        if mode == .netascii {
            // netascii changes the length, so the text is converted whole, in memory: boot menus, not kernels.
            guard source.size <= TFTPServer.netasciiLimit else {
                throw TFTPFailure(.accessViolation, "netascii is served for files up to 16 MiB; use octet")
            }
            source = TFTPSource(bytes: ByteBuffer(bytes: Netascii.encode(try source.readAll().readableBytesView)))
        }
        let parameters = try TFTPNegotiation.negotiate(
            request.options, transferSize: source.size, limits: configuration.limits)
        return Prepared(source: source, parameters: parameters)
    }

    /// Runs one transfer on a new socket bound to the server's address and an ephemeral port, on a thread
    /// of its own (see `TFTPTransfer`); cancelling the task stops it.
    private func transfer(_ prepared: Prepared, to client: SocketAddress) async throws -> TFTPTransferOutcome {
        var local = localAddress
        local.port = 0
        var timing = TFTPRetransmission()
        // The client's timeout is bounded by negotiation (`TFTPLimits.maximumTimeout`); the back-off cap
        // and the patience with a silent client are the server's and never grow with it.
        timing.clientTimeout =
            prepared.parameters.timeoutSeconds.map { .seconds(Int64($0)) } ?? configuration.defaultTimeout
        timing.patience = configuration.patience
        let segments = TFTPSegmentation.segmentsPerWrite(
            to: client, blockSize: prepared.parameters.blockSize, windowSize: prepared.parameters.windowSize)
        let transfer = try TFTPTransfer(
            client: client, local: local, source: prepared.source, parameters: prepared.parameters, timing: timing,
            segmentsPerWrite: segments)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                Thread { continuation.resume(returning: transfer.run()) }.start()
            }
        } onCancel: {
            transfer.cancel()
        }
    }
}

/// A refusal worded for the client, with the TFTP error code that fits.
struct TFTPFailure: Error {
    var code: TFTPErrorCode
    var message: String
    init(_ code: TFTPErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Transfers in flight, overall and per client address.
struct TransferSlots: Sendable {
    private(set) var total = 0
    private var perClient: [String: Int] = [:]

    mutating func reserve(_ client: String, total limit: Int, perClient clientLimit: Int) -> Bool {
        let current = perClient[client, default: 0]
        guard total < limit, current < clientLimit else { return false }
        total += 1
        perClient[client] = current + 1
        return true
    }

    mutating func release(_ client: String) {
        total -= 1
        let current = perClient[client, default: 1] - 1
        perClient[client] = current > 0 ? current : nil
    }
}
