import NIOCore

/// One TFTP packet (RFC 1350, with RFC 2347's option acknowledgement).
///
/// Every integer field is a 16-bit unsigned big-endian ("network byte order", RFC 1350 section 5);
/// strings are bytes terminated by one NUL.
package enum TFTPPacket: Sendable, Equatable {
    /// RRQ: `01 | filename NUL | mode NUL | (option NUL value NUL)*`.
    case readRequest(TFTPRequest)
    /// WRQ: same layout as RRQ with opcode 2.
    case writeRequest(TFTPRequest)
    /// DATA: `03 | block | 0...blksize bytes`.
    case data(block: UInt16, payload: ByteBuffer)
    /// ACK: `04 | block`.
    case acknowledgement(block: UInt16)
    /// ERROR: `05 | code | message NUL`.
    case error(code: TFTPErrorCode, message: String)
    /// OACK (RFC 2347): `06 | (option NUL value NUL)*`.
    case optionAcknowledgement([TFTPOption])

    /// The opcodes of RFC 1350 section 5 and RFC 2347.
    package enum Opcode: UInt16, Sendable {
        case readRequest = 1
        case writeRequest = 2
        case data = 3
        case acknowledgement = 4
        case error = 5
        case optionAcknowledgement = 6
    }

    /// RFC 2347: a request, options included, must fit in 512 bytes.
    package static let maximumRequestSize = 512

    /// Decodes one datagram's payload.
    /// - Throws: `NetBootError` with `.malformedPacket` naming what is wrong.
    package static func decode(_ buffer: ByteBuffer) throws -> TFTPPacket {
        var buffer = buffer
        guard let raw = buffer.readInteger(endianness: .big, as: UInt16.self) else {
            throw NetBootError(.malformedPacket, "packet of \(buffer.readableBytes) bytes is too short for an opcode")
        }
        guard let opcode = Opcode(rawValue: raw) else {
            throw NetBootError(.malformedPacket, "unknown opcode \(raw)")
        }
        switch opcode {
        case .readRequest, .writeRequest:
            let request = try decodeRequest(&buffer)
            return opcode == .readRequest ? .readRequest(request) : .writeRequest(request)
        case .data:
            guard let block = buffer.readInteger(endianness: .big, as: UInt16.self) else {
                throw NetBootError(.malformedPacket, "DATA packet without a block number")
            }
            return .data(block: block, payload: buffer)
        case .acknowledgement:
            guard let block = buffer.readInteger(endianness: .big, as: UInt16.self) else {
                throw NetBootError(.malformedPacket, "ACK packet without a block number")
            }
            return .acknowledgement(block: block)
        case .error:
            guard let code = buffer.readInteger(endianness: .big, as: UInt16.self) else {
                throw NetBootError(.malformedPacket, "ERROR packet without an error code")
            }
            // Some clients omit the message's NUL; take what is there.
            let message = readString(&buffer) ?? buffer.readString(length: buffer.readableBytes) ?? ""
            return .error(code: TFTPErrorCode(rawValue: code), message: message)
        case .optionAcknowledgement:
            return .optionAcknowledgement(try decodeOptions(&buffer))
        }
    }

    /// Encodes the packet into `buffer`.
    package func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .readRequest(let request), .writeRequest(let request):
            let opcode: Opcode = if case .readRequest = self { .readRequest } else { .writeRequest }
            buffer.writeInteger(opcode.rawValue, endianness: .big)
            buffer.writeBytes(request.filename)
            buffer.writeInteger(UInt8(0))
            Self.writeString(request.mode, into: &buffer)
            Self.writeOptions(request.options, into: &buffer)
        case .data(let block, let payload):
            buffer.writeInteger(Opcode.data.rawValue, endianness: .big)
            buffer.writeInteger(block, endianness: .big)
            buffer.writeImmutableBuffer(payload)
        case .acknowledgement(let block):
            buffer.writeInteger(Opcode.acknowledgement.rawValue, endianness: .big)
            buffer.writeInteger(block, endianness: .big)
        case .error(let code, let message):
            buffer.writeInteger(Opcode.error.rawValue, endianness: .big)
            buffer.writeInteger(code.rawValue, endianness: .big)
            Self.writeString(message, into: &buffer)
        case .optionAcknowledgement(let options):
            buffer.writeInteger(Opcode.optionAcknowledgement.rawValue, endianness: .big)
            Self.writeOptions(options, into: &buffer)
        }
    }

    /// The packet as a new buffer.
    package func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 32)
        encode(into: &buffer)
        return buffer
    }

    private static func decodeRequest(_ buffer: inout ByteBuffer) throws -> TFTPRequest {
        guard let filenameLength = buffer.readableBytesView.firstIndex(of: 0).map({ $0 - buffer.readerIndex }),
            let filename = buffer.readBytes(length: filenameLength)
        else {
            throw NetBootError(.malformedPacket, "request without a NUL-terminated filename")
        }
        buffer.moveReaderIndex(forwardBy: 1)
        guard let mode = readString(&buffer) else {
            throw NetBootError(.malformedPacket, "request without a NUL-terminated mode")
        }
        let options = try decodeOptions(&buffer)
        return TFTPRequest(filename: filename, mode: mode, options: options)
    }

    private static func decodeOptions(_ buffer: inout ByteBuffer) throws -> [TFTPOption] {
        var options: [TFTPOption] = []
        while buffer.readableBytes > 0 {
            // Trailing NUL padding after the last option is tolerated (some PXE ROMs send it).
            if buffer.readableBytesView.allSatisfy({ $0 == 0 }) { break }
            guard let name = readString(&buffer) else {
                throw NetBootError(.malformedPacket, "option name without a terminating NUL")
            }
            guard let value = readString(&buffer) else {
                throw NetBootError(.malformedPacket, "option '\(name)' without a value")
            }
            guard !name.isEmpty else {
                throw NetBootError(.malformedPacket, "empty option name")
            }
            options.append(TFTPOption(name: name, value: value))
        }
        return options
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: 0) else { return nil }
        let string = buffer.readString(length: end - buffer.readerIndex)
        buffer.moveReaderIndex(forwardBy: 1)
        return string
    }

    private static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeString(string)
        buffer.writeInteger(UInt8(0))
    }

    private static func writeOptions(_ options: [TFTPOption], into buffer: inout ByteBuffer) {
        for option in options {
            writeString(option.name, into: &buffer)
            writeString(option.value, into: &buffer)
        }
    }
}

/// The body of an RRQ or WRQ.
package struct TFTPRequest: Sendable, Equatable {
    /// The filename as sent: bytes, not necessarily UTF-8, never containing NUL.
    package var filename: [UInt8]
    /// `octet`, `netascii` or `mail`, in any case.
    package var mode: String
    /// RFC 2347 options in the order sent.
    package var options: [TFTPOption]

    package init(filename: [UInt8], mode: String, options: [TFTPOption] = []) {
        self.filename = filename
        self.mode = mode
        self.options = options
    }

    package init(filename: String, mode: String, options: [TFTPOption] = []) {
        self.init(filename: Array(filename.utf8), mode: mode, options: options)
    }
}

/// One RFC 2347 option: a name (case-insensitive) and a value, both text.
package struct TFTPOption: Sendable, Equatable {
    package var name: String
    package var value: String

    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The error codes of RFC 1350 (0-7) and RFC 2347 (8).
package struct TFTPErrorCode: RawRepresentable, Sendable, Equatable, Hashable, CustomStringConvertible {
    package var rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    package static let notDefined = TFTPErrorCode(rawValue: 0)
    package static let fileNotFound = TFTPErrorCode(rawValue: 1)
    package static let accessViolation = TFTPErrorCode(rawValue: 2)
    package static let diskFull = TFTPErrorCode(rawValue: 3)
    package static let illegalOperation = TFTPErrorCode(rawValue: 4)
    package static let unknownTransferID = TFTPErrorCode(rawValue: 5)
    package static let fileExists = TFTPErrorCode(rawValue: 6)
    package static let noSuchUser = TFTPErrorCode(rawValue: 7)
    package static let optionsRefused = TFTPErrorCode(rawValue: 8)

    package var description: String { "\(rawValue)" }
}
