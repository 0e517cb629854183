import NIOCore

/// Text a client chose (a file name, a path, a message naming one), made safe for a log line.
enum LogText {
    /// Escapes what could break a log line or a terminal: control characters (a newline would start a
    /// forged line), DEL, backslash and quote become `\n`, `\xNN`, `\\`, `\"`; bytes that are not UTF-8
    /// become `\xNN` too. Printable text, non-ASCII letters included, is kept.
    static func escape(_ bytes: [UInt8]) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return bytes.map { byte in
                byte >= 0x20 && byte < 0x7F && byte != 0x5C && byte != 0x22 ? String(UnicodeScalar(byte)) : hex(byte)
            }.joined()
        }
        return escape(text)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    || scalar.value == 0x2028 || scalar.value == 0x2029
                {
                    out += scalar.value <= 0xFF ? hex(UInt8(scalar.value)) : "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
    }
}

extension SocketAddress {
    /// The address as a log line shows it: `ADDR:PORT` for IPv4 and for an IPv4 client of a dual-stack
    /// socket (`::ffff:192.0.2.17`), `[ADDR]:PORT` for IPv6 (NIO's own description,
    /// `[IPv4]192.0.2.17/192.0.2.17:2070`, repeats the address and names the family).
    var logText: String {
        switch self {
        case .v4:
            return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6:
            let address = ipAddress ?? "?"
            if address.hasPrefix("::ffff:"), address.dropFirst(7).contains(".") {
                return "\(address.dropFirst(7)):\(port ?? 0)"
            }
            return "[\(address)]:\(port ?? 0)"
        case .unixDomainSocket:
            return pathname ?? "unix"
        }
    }
}
