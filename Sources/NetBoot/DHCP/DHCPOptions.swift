import NIOCore

/// The option codes kiln reads or writes (RFC 2132, RFC 4578 for PXE, RFC 3004 for the user class).
package struct DHCPOptionCode: RawRepresentable, Sendable, Hashable {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }

    package static let pad = DHCPOptionCode(rawValue: 0)
    package static let subnetMask = DHCPOptionCode(rawValue: 1)
    package static let router = DHCPOptionCode(rawValue: 3)
    package static let domainNameServer = DHCPOptionCode(rawValue: 6)
    package static let hostName = DHCPOptionCode(rawValue: 12)
    package static let domainName = DHCPOptionCode(rawValue: 15)
    package static let vendorSpecific = DHCPOptionCode(rawValue: 43)
    package static let requestedAddress = DHCPOptionCode(rawValue: 50)
    package static let leaseTime = DHCPOptionCode(rawValue: 51)
    package static let overload = DHCPOptionCode(rawValue: 52)
    package static let messageType = DHCPOptionCode(rawValue: 53)
    package static let serverIdentifier = DHCPOptionCode(rawValue: 54)
    package static let parameterRequestList = DHCPOptionCode(rawValue: 55)
    package static let maximumMessageSize = DHCPOptionCode(rawValue: 57)
    package static let renewalTime = DHCPOptionCode(rawValue: 58)
    package static let rebindingTime = DHCPOptionCode(rawValue: 59)
    /// "PXEClient:Arch:00007:UNDI:003016" from PXE firmware; a server answers "PXEClient".
    package static let vendorClass = DHCPOptionCode(rawValue: 60)
    package static let clientIdentifier = DHCPOptionCode(rawValue: 61)
    package static let tftpServerName = DHCPOptionCode(rawValue: 66)
    package static let bootFileName = DHCPOptionCode(rawValue: 67)
    /// iPXE sends "iPXE" here (RFC 3004 user class).
    package static let userClass = DHCPOptionCode(rawValue: 77)
    /// RFC 4578: client system architecture, 16-bit big-endian.
    package static let clientArchitecture = DHCPOptionCode(rawValue: 93)
    package static let clientNetworkInterface = DHCPOptionCode(rawValue: 94)
    /// RFC 4578: client machine identifier, type 0 then a 16-byte UUID.
    package static let clientMachineID = DHCPOptionCode(rawValue: 97)
    package static let end = DHCPOptionCode(rawValue: 255)
}

/// DHCP options in the order they came, each a code and its bytes (RFC 2132 section 2: code(1) len(1) data).
package struct DHCPOptions: Sendable, Equatable {
    package private(set) var items: [(code: DHCPOptionCode, value: [UInt8])] = []

    package init() {}

    package static func == (a: DHCPOptions, b: DHCPOptions) -> Bool {
        a.items.count == b.items.count
            && zip(a.items, b.items).allSatisfy { $0.code == $1.code && $0.value == $1.value }
    }

    /// The value of `code`; several occurrences are concatenated (RFC 3396).
    package func first(_ code: DHCPOptionCode) -> [UInt8]? {
        let values = items.filter { $0.code == code }.map(\.value)
        return values.isEmpty ? nil : values.flatMap { $0 }
    }

    package subscript(_ code: DHCPOptionCode) -> [UInt8]? {
        get { first(code) }
        set {
            items.removeAll { $0.code == code }
            if let newValue { items.append((code, newValue)) }
        }
    }

    mutating func merge(_ other: DHCPOptions) { items += other.items }

    /// Reads options up to the end option or the end of the buffer.
    /// - Throws: `NetBootError(.malformedPacket)` when an option's length runs past the data.
    static func decode(_ buffer: inout ByteBuffer) throws -> DHCPOptions {
        var options = DHCPOptions()
        while let raw = buffer.readInteger(as: UInt8.self) {
            let code = DHCPOptionCode(rawValue: raw)
            if code == .pad { continue }
            if code == .end { break }
            guard let length = buffer.readInteger(as: UInt8.self), let value = buffer.readBytes(length: Int(length))
            else {
                throw NetBootError(.malformedPacket, "DHCP option \(raw) runs past the end of the message")
            }
            options.items.append((code, value))
        }
        return options
    }

    /// Writes every option, splitting values over 255 bytes (RFC 3396), then the end option.
    func encode(into buffer: inout ByteBuffer) {
        for (code, value) in items {
            var rest = value[...]
            repeat {
                let part = rest.prefix(255)
                buffer.writeInteger(code.rawValue)
                buffer.writeInteger(UInt8(part.count))
                buffer.writeBytes(part)
                rest = rest.dropFirst(part.count)
            } while !rest.isEmpty
        }
        buffer.writeInteger(DHCPOptionCode.end.rawValue)
    }

    // Typed views of the options kiln uses.

    package var messageType: DHCPMessageType? {
        get { first(.messageType)?.first.flatMap(DHCPMessageType.init(rawValue:)) }
        set { self[.messageType] = newValue.map { [$0.rawValue] } }
    }

    package var vendorClass: String? { first(.vendorClass).map { String(decoding: $0, as: UTF8.self) } }

    /// RFC 3004: user classes, each preceded by its length; iPXE sends its class without the length
    /// byte, so a value that does not parse as length-prefixed is taken whole.
    package var userClasses: [String] {
        guard let bytes = first(.userClass) else { return [] }
        var classes: [String] = []
        var index = 0
        while index < bytes.count {
            let length = Int(bytes[index])
            guard length > 0, index + 1 + length <= bytes.count else {
                return [String(decoding: bytes, as: UTF8.self)]
            }
            classes.append(String(decoding: bytes[(index + 1)..<(index + 1 + length)], as: UTF8.self))
            index += 1 + length
        }
        return classes
    }

    /// RFC 4578 option 93: the first architecture listed.
    package var clientArchitecture: UInt16? {
        guard let bytes = first(.clientArchitecture), bytes.count >= 2 else { return nil }
        return UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    package func address(_ code: DHCPOptionCode) -> IPv4Address? {
        guard let bytes = first(code), bytes.count == 4 else { return nil }
        return IPv4Address(bytes.reduce(0) { $0 << 8 | UInt32($1) })
    }

    package mutating func setAddress(_ code: DHCPOptionCode, _ address: IPv4Address) { self[code] = address.bytes }

    package mutating func setUInt32(_ code: DHCPOptionCode, _ value: UInt32) {
        self[code] = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) }
    }

    package mutating func setString(_ code: DHCPOptionCode, _ value: String) { self[code] = Array(value.utf8) }
}

/// RFC 2132 option 53.
package enum DHCPMessageType: UInt8, Sendable {
    case discover = 1
    case offer = 2
    case request = 3
    case decline = 4
    case ack = 5
    case nak = 6
    case release = 7
    case inform = 8
}
