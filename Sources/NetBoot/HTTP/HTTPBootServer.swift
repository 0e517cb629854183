import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only HTTP/1.1 server for installers: generated files first, then files under the boot root,
/// GET and HEAD, single byte ranges (RFC 9110 section 14), keep-alive.
///
/// What one client can hold is bounded: a file is read a chunk at a time and the next chunk only once
/// the last one is on the socket (a client that does not read costs one chunk, not the file), idle and
/// slow connections time out, and connections beyond `HTTPLimits.maxConnections` are closed at once.
package final class HTTPBootServer: Sendable {
    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    package let localAddress: SocketAddress
    private let listener: NIOAsyncChannel<Connection, Never>
    private let root: BootRoot
    private let generated: any BootFileProvider
    private let logger: Logger
    private let limits: HTTPLimits
    /// Content types for names of the server's user (a status page, metrics), before the extension table.
    private let contentTypes: [String: String]
    private let openConnections = Atomic<Int>(0)

    /// Bytes read from a file and handed to the socket at a time.
    static let chunkSize = 64 * 1024

    private init(
        listener: NIOAsyncChannel<Connection, Never>, localAddress: SocketAddress, root: BootRoot,
        generated: any BootFileProvider, limits: HTTPLimits, contentTypes: [String: String], logger: Logger
    ) {
        self.limits = limits
        self.contentTypes = contentTypes
        self.listener = listener
        self.localAddress = localAddress
        self.root = root
        self.generated = generated
        self.logger = logger
    }

    /// Binds the listening socket; `run()` then serves.
    /// - Throws: `NetBootError(.io)` naming the address when it cannot be bound.
    package static func bind(
        host: String, port: Int, root: BootRoot, generated: any BootFileProvider = GeneratedFiles.none,
        limits: HTTPLimits = HTTPLimits(), contentTypes: [String: String] = [:], logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTPBootServer {
        let listener: NIOAsyncChannel<Connection, Never>
        do {
            listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard(limits: limits))
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw NetBootError(.io, "cannot listen for HTTP on \(HostPort.format(host, port))", underlying: error)
        }
        guard let address = listener.channel.localAddress else {
            throw NetBootError(.io, "HTTP socket on \(HostPort.format(host, port)) has no address")
        }
        return HTTPBootServer(
            listener: listener, localAddress: address, root: root, generated: generated, limits: limits,
            contentTypes: contentTypes, logger: logger)
    }

    /// Closes the listening socket; connections already open are answered until they close.
    package func stopListening() { listener.channel.close(promise: nil) }

    /// The bound address as kiln writes it.
    package var boundAddress: HostPort {
        HostPort(host: localAddress.ipAddress ?? "\(localAddress)", port: localAddress.port ?? 0)
    }

    /// Serves until the calling task is cancelled.
    /// (`stopListening()` ends it once the open connections have ended.)
    package func run() async throws {
        try await listener.executeThenClose { connections in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in connections {
                    let open = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
                    guard open <= limits.maxConnections else {
                        openConnections.wrappingSubtract(1, ordering: .relaxed)
                        // Through executeThenClose: the async channel's writer must be finished.
                        try? await connection.executeThenClose { _, _ in }
                        logger.debug(
                            "http: too many connections, closed one",
                            metadata: ["client": "\(connection.channel.remoteAddress?.logText ?? "?")"])
                        continue
                    }
                    group.addTask {
                        defer { self.openConnections.wrappingSubtract(1, ordering: .relaxed) }
                        do {
                            try await self.serve(connection)
                        } catch {
                            self.logger.debug("http: connection ended", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    private func serve(_ connection: Connection) async throws {
        let peer = connection.channel.remoteAddress
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let request):
                    head = request
                case .body:
                    continue
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let keepAlive = try await respond(
                        to: request, from: peer, outbound: outbound, channel: connection.channel)
                    if !keepAlive { return }
                }
            }
        }
    }

    /// Answers one request; returns whether the connection stays open.
    private func respond(
        to request: HTTPRequestHead, from peer: SocketAddress?,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel
    ) async throws -> Bool {
        let keepAlive = request.isKeepAlive
        let metadata: Logger.Metadata = [
            "client": "\(peer?.logText ?? "?")", "path": "\(LogText.escape(request.uri))",
        ]
        func send(_ status: HTTPResponseStatus, _ headers: HTTPHeaders = [:]) async throws {
            try await Self.send(status, headers, request: request, keepAlive: keepAlive, outbound: outbound)
        }
        guard request.method == .GET || request.method == .HEAD else {
            try await send(.methodNotAllowed, ["Allow": "GET, HEAD"])
            return keepAlive
        }
        let relative: String
        do {
            guard let path = HTTPBootServer.decodePath(request.uri) else {
                throw NetBootError(.refused, "bad percent-encoding in '\(request.uri)'")
            }
            relative = try root.relativePath(for: Array(path.utf8))
        } catch let error as NetBootError {
            logger.info(
                "http: refused", metadata: metadata.merging(["error": "\(LogText.escape(error.message))"]) { $1 })
            try await send(.forbidden)
            return keepAlive
        }
        let source: TFTPSource
        let generatedBytes: [UInt8]?
        do {
            let client = BootClient(address: peer, transport: .http)
            generatedBytes = try await generated.file(at: relative, for: client)
            if generatedBytes == nil, let window = try await generated.diskRange(at: relative, for: client) {
                let opened = try BootRoot.openVouched(window.path, as: relative)
                guard window.range.upperBound <= opened.size else {
                    close(opened.descriptor)
                    throw NetBootError(.io, "\(window.path) is shorter than the range asked for")
                }
                // The response's bytes start at the window's offset in the file.
                return try await respond(
                    request, source: TFTPSource(descriptor: opened.descriptor, size: opened.size),
                    base: window.range.lowerBound, size: window.range.count, relative: relative,
                    keepAlive: keepAlive, metadata: metadata, outbound: outbound, channel: channel)
            }
        } catch let error as NetBootError where error.code == .refused || error.code == .notFound {
            // A generator's refusal (a deploy token that does not fit, say) is the client's answer, not
            // the end of the connection.
            try await send(error.code == .notFound ? .notFound : .forbidden)
            logger.info("http: refused", metadata: metadata.merging(["error": "\(error.message)"]) { $1 })
            return keepAlive
        }
        if let bytes = generatedBytes {
            source = TFTPSource(bytes: ByteBuffer(bytes: bytes))
        } else {
            do {
                let vouched = try await generated.diskFile(
                    at: relative, for: BootClient(address: peer, transport: .http))
                let opened = try vouched.map { try BootRoot.openVouched($0, as: relative) } ?? root.open(relative)
                source = TFTPSource(descriptor: opened.descriptor, size: opened.size)
            } catch let error as NetBootError {
                try await send(error.code == .notFound ? .notFound : .forbidden)
                logger.info(
                    "http: not served",
                    metadata: metadata.merging(["error": "\(LogText.escape(error.message))"]) { $1 })
                return keepAlive
            }
        }
        return try await respond(
            request, source: source, base: 0, size: source.size, relative: relative, keepAlive: keepAlive,
            metadata: metadata, outbound: outbound, channel: channel)
    }

    /// A response without a body.
    private static func send(
        _ status: HTTPResponseStatus, _ headers: HTTPHeaders, request: HTTPRequestHead, keepAlive: Bool,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = headers
        if headers["Content-Length"].isEmpty { headers.add(name: "Content-Length", value: "0") }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: status, headers: headers)))
        try await outbound.write(.end(nil))
    }

    /// Sends `size` bytes of `source` from `base` (the whole file, or a disk range), or the byte range of
    /// them that the request asks for.
    private func respond(
        _ request: HTTPRequestHead, source: TFTPSource, base: Int, size: Int, relative: String, keepAlive: Bool,
        metadata: Logger.Metadata, outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel
    ) async throws -> Bool {
        var metadata = metadata
        var headers: HTTPHeaders = [
            "Accept-Ranges": "bytes", "Content-Type": contentTypes[relative] ?? HTTPBootServer.contentType(relative),
        ]
        var range = 0..<size
        var status = HTTPResponseStatus.ok
        if let header = request.headers.first(name: "Range") {
            switch ByteRange.parse(header, size: size) {
            case .whole:
                break
            case .range(let requested):
                range = requested
                status = .partialContent
                headers.add(
                    name: "Content-Range",
                    value: "bytes \(requested.lowerBound)-\(requested.upperBound - 1)/\(size)")
            case .unsatisfiable:
                try await Self.send(
                    .rangeNotSatisfiable, ["Content-Range": "bytes */\(size)"], request: request, keepAlive: keepAlive,
                    outbound: outbound)
                return keepAlive
            }
        }
        headers.add(name: "Content-Length", value: "\(range.count)")
        // Straight to the channel, each part awaited until it is on the socket: the next chunk is read
        // only then, so a client that stops reading holds one chunk of memory (the async writer's own
        // back-pressure reacts only after its writes reach the event loop, by when many chunks can be
        // queued).
        try await channel.writeAndFlush(
            HTTPServerResponsePart.head(
                HTTPResponseHead(
                    version: request.version, status: status,
                    headers: headers.adding("Connection", keepAlive ? "keep-alive" : "close"))))
        if request.method == .GET, !range.isEmpty, let descriptor = source.fileDescriptor {
            // A file goes out with sendfile(2): the kernel moves it from the page cache to the socket,
            // kiln holds none of it, and the write ends when the client has taken it all.
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: dup(descriptor))
            defer { try? handle.close() }
            let region = FileRegion(
                fileHandle: handle, readerIndex: base + range.lowerBound, endIndex: base + range.upperBound)
            try await channel.writeAndFlush(HTTPServerResponsePart.body(.fileRegion(region)))
        } else if request.method == .GET {
            var offset = range.lowerBound
            while offset < range.upperBound {
                let length = min(HTTPBootServer.chunkSize, range.upperBound - offset)
                var buffer = channel.allocator.buffer(capacity: length)
                try source.read(offset: base + offset, length: length, into: &buffer)
                try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)))
                offset += length
            }
        }
        // Logged once the body is out: with a Content-Length the end puts nothing on the wire, and a
        // client that has its bytes may close before the end's flush, which then fails.
        metadata["bytes"] = "\(range.count)"
        metadata["status"] = "\(status.code)"
        logger.info("http: sent", metadata: metadata)
        try await channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        return keepAlive
    }

    /// The path of a request target, percent-decoded, without query or fragment; nil when the encoding is bad.
    package static func decodePath(_ uri: String) -> String? {
        var target = Substring(uri)
        if let end = target.firstIndex(where: { $0 == "?" || $0 == "#" }) { target = target[..<end] }
        var bytes: [UInt8] = []
        var iterator = Array(target.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            // A NUL can end a name in C; no request needs one.
            guard value != 0 else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func contentType(_ path: String) -> String {
        switch path.split(separator: ".").last.map({ $0.lowercased() }) {
        case "cfg", "txt", "ks", "seed", "ipxe", "sh", "conf": return "text/plain; charset=utf-8"
        case "html": return "text/html; charset=utf-8"
        case "json": return "application/json"
        case "gz": return "application/gzip"
        case "xz": return "application/x-xz"
        case "deb", "udeb": return "application/vnd.debian.binary-package"
        default: return "application/octet-stream"
        }
    }
}

extension HTTPHeaders {
    fileprivate func adding(_ name: String, _ value: String) -> HTTPHeaders {
        var copy = self
        copy.add(name: name, value: value)
        return copy
    }
}

/// A `Range` header for one byte range (RFC 9110 section 14.1.2). Several ranges are answered with the
/// whole file, which the RFC allows.
package enum ByteRange: Equatable {
    case whole
    case range(Range<Int>)
    case unsatisfiable

    package static func parse(_ header: String, size: Int) -> ByteRange {
        let text = header.trimmingSpaces()
        guard text.hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst("bytes=".count)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingSpaces()
        let last = spec[spec.index(after: dash)...].trimmingSpaces()
        if first.isEmpty {
            // A suffix: the last N bytes.
            guard let count = Int(last) else { return .whole }
            guard count > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - count)..<size)
        }
        guard let start = Int(first) else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .range(start..<size) }
        guard let end = Int(last), end >= start else { return .whole }
        // min before + 1: an end of Int.max is a client's way to say "to the end" (and a trap otherwise).
        return .range(start..<(min(end, size - 1) + 1))
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
