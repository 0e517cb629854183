import NIOCore

/// One DHCP message (RFC 2131 section 2, the BOOTP layout of RFC 951) with its options (RFC 2132).
///
/// Every multi-byte integer is big-endian ("network byte order"); addresses are 4 bytes in network order.
/// Fixed part, 236 bytes: op(1) htype(1) hlen(1) hops(1) xid(4) secs(2) flags(2) ciaddr(4) yiaddr(4)
/// siaddr(4) giaddr(4) chaddr(16) sname(64) file(128); then the magic cookie 99.130.83.99 and options.
package struct DHCPMessage: Sendable, Equatable {
    /// BOOTREQUEST (1, client to server) or BOOTREPLY (2).
    package var op: UInt8
    /// Hardware type: 1 for Ethernet.
    package var hardwareType: UInt8 = 1
    package var hardwareLength: UInt8 = 6
    package var hops: UInt8 = 0
    package var transactionID: UInt32
    package var seconds: UInt16 = 0
    /// Bit 15: the client wants the reply broadcast (RFC 2131 section 4.1).
    package var flags: UInt16 = 0
    package var clientAddress: IPv4Address = .zero
    package var yourAddress: IPv4Address = .zero
    /// The next server in the boot chain (the TFTP server for PXE).
    package var serverAddress: IPv4Address = .zero
    package var relayAddress: IPv4Address = .zero
    /// 16 bytes; the first `hardwareLength` are the client's hardware address.
    package var clientHardware: [UInt8]
    package var serverName: String = ""
    package var bootFile: String = ""
    package var options: DHCPOptions

    package static let bootRequest: UInt8 = 1
    package static let bootReply: UInt8 = 2
    static let magicCookie: UInt32 = 0x6382_5363
    static let fixedLength = 236

    package init(op: UInt8, transactionID: UInt32, clientHardware: [UInt8], options: DHCPOptions = DHCPOptions()) {
        self.op = op
        self.transactionID = transactionID
        self.clientHardware = clientHardware
        self.options = options
    }

    /// The client's MAC address, when the hardware is Ethernet.
    package var macAddress: MACAddress? {
        guard hardwareType == 1, hardwareLength == 6, clientHardware.count >= 6 else { return nil }
        return MACAddress(Array(clientHardware.prefix(6)))
    }

    /// Decodes a datagram's payload.
    /// - Throws: `NetBootError(.malformedPacket)` naming what is wrong.
    package static func decode(_ buffer: ByteBuffer) throws -> DHCPMessage {
        var buffer = buffer
        guard buffer.readableBytes >= fixedLength + 4 else {
            throw NetBootError(.malformedPacket, "DHCP message of \(buffer.readableBytes) bytes is shorter than 240")
        }
        // The length check above makes every read of the fixed part succeed.
        let op = buffer.readInteger(as: UInt8.self) ?? 0
        let htype = buffer.readInteger(as: UInt8.self) ?? 0
        let hlen = buffer.readInteger(as: UInt8.self) ?? 0
        let hops = buffer.readInteger(as: UInt8.self) ?? 0
        let xid = buffer.readInteger(endianness: .big, as: UInt32.self) ?? 0
        let secs = buffer.readInteger(endianness: .big, as: UInt16.self) ?? 0
        let flags = buffer.readInteger(endianness: .big, as: UInt16.self) ?? 0
        let addresses = (0..<4).map { _ in IPv4Address(buffer.readInteger(endianness: .big, as: UInt32.self) ?? 0) }
        let chaddr = buffer.readBytes(length: 16) ?? []
        let sname = buffer.readBytes(length: 64) ?? []
        let file = buffer.readBytes(length: 128) ?? []
        guard op == bootRequest || op == bootReply else {
            throw NetBootError(.malformedPacket, "DHCP op \(op) is neither request nor reply")
        }
        guard hlen <= 16 else { throw NetBootError(.malformedPacket, "hardware address length \(hlen) exceeds 16") }
        guard buffer.readInteger(endianness: .big, as: UInt32.self) == magicCookie else {
            throw NetBootError(.malformedPacket, "DHCP message without the magic cookie")
        }
        var options = try DHCPOptions.decode(&buffer)
        // RFC 2132 option 52: options continue in the file and/or sname fields.
        var bootFile = cString(file)
        var serverName = cString(sname)
        if let overload = options.first(.overload)?.first {
            if overload & 1 != 0 {
                var extra = ByteBuffer(bytes: file)
                options.merge(try DHCPOptions.decode(&extra))
                bootFile = ""
            }
            if overload & 2 != 0 {
                var extra = ByteBuffer(bytes: sname)
                options.merge(try DHCPOptions.decode(&extra))
                serverName = ""
            }
        }
        var message = DHCPMessage(op: op, transactionID: xid, clientHardware: chaddr, options: options)
        message.hardwareType = htype
        message.hardwareLength = hlen
        message.hops = hops
        message.seconds = secs
        message.flags = flags
        message.clientAddress = addresses[0]
        message.yourAddress = addresses[1]
        message.serverAddress = addresses[2]
        message.relayAddress = addresses[3]
        message.serverName = serverName
        message.bootFile = bootFile
        return message
    }

    /// Encodes the message, padded to the 300 bytes that BOOTP relays and old clients expect.
    package func encoded() -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 576)
        buffer.writeInteger(op)
        buffer.writeInteger(hardwareType)
        buffer.writeInteger(hardwareLength)
        buffer.writeInteger(hops)
        buffer.writeInteger(transactionID, endianness: .big)
        buffer.writeInteger(seconds, endianness: .big)
        buffer.writeInteger(flags, endianness: .big)
        for address in [clientAddress, yourAddress, serverAddress, relayAddress] {
            buffer.writeInteger(address.value, endianness: .big)
        }
        buffer.writeBytes(Self.fixed(clientHardware, 16))
        buffer.writeBytes(Self.fixed(Array(serverName.utf8), 64, terminated: true))
        buffer.writeBytes(Self.fixed(Array(bootFile.utf8), 128, terminated: true))
        buffer.writeInteger(Self.magicCookie, endianness: .big)
        options.encode(into: &buffer)
        if buffer.readableBytes < 300 { buffer.writeRepeatingByte(0, count: 300 - buffer.readableBytes) }
        return buffer
    }

    private static func fixed(_ bytes: [UInt8], _ length: Int, terminated: Bool = false) -> [UInt8] {
        let kept = Array(bytes.prefix(terminated ? length - 1 : length))
        return kept + [UInt8](repeating: 0, count: length - kept.count)
    }

    private static func cString(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

/// An IPv4 address as a 32-bit number (the first octet in the high byte).
package struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var value: UInt32
    package init(_ value: UInt32) { self.value = value }

    package init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard part.count <= 3, let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.value = value
    }

    package static let zero = IPv4Address(0)
    package var bytes: [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
    package var description: String { bytes.map(String.init).joined(separator: ".") }
    package static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An Ethernet address.
package struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) {
        precondition(bytes.count == 6)
        self.bytes = bytes
    }

    /// Parses `52:54:00:12:34:56` or `52-54-00-12-34-56`, any case.
    package init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// `52:54:00:12:34:56`.
    package var description: String { bytes.map { hex($0) }.joined(separator: ":") }

    /// pxelinux's per-host config name: `01-52-54-00-12-34-56` (ARP type 1, then the address).
    package var pxelinuxName: String { "01-" + bytes.map { hex($0) }.joined(separator: "-") }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
