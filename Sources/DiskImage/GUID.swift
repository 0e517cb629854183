/// A GUID as Microsoft formats store it (VHDX, GPT): the first three fields little-endian, the last
/// eight bytes as they are.
struct GUID: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes in the order they are written to disk.
    var bytes: [UInt8]

    static let zero = GUID(mixedEndian: [UInt8](repeating: 0, count: 16))

    init(mixedEndian bytes: [UInt8]) { self.bytes = bytes }

    /// Parses "01234567-89AB-CDEF-0123-456789ABCDEF" into its on-disk mixed-endian bytes.
    init(_ text: String) {
        let hex = text.filter { $0 != "-" }
        var plain: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            plain.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        bytes = [plain[3], plain[2], plain[1], plain[0], plain[5], plain[4], plain[7], plain[6]] + plain[8..<16]
    }

    /// Parses the text form, 8-4-4-4-12 hex digits in either case; nil for anything else.
    init?(validating text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return nil }
        for (index, byte) in utf8.enumerated() {
            let dash = [8, 13, 18, 23].contains(index)
            let hex = (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
            guard dash ? byte == UInt8(ascii: "-") : hex else { return nil }
        }
        self.init(text)
    }

    /// A random (version 4) GUID.
    static func random() -> GUID {
        var plain = (0..<16).map { _ in UInt8.random(in: 0...255) }
        plain[6] = (plain[6] & 0x0F) | 0x40
        plain[8] = (plain[8] & 0x3F) | 0x80
        return GUID(
            mixedEndian: [plain[3], plain[2], plain[1], plain[0], plain[5], plain[4], plain[7], plain[6]]
                + plain[8..<16])
    }

    /// The 16 bytes in text order (big-endian fields), as RFC 4122 UUIDs are stored by VDI and VHD.
    var plainBytes: [UInt8] {
        [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8..<16]
    }

    var description: String {
        let p = plainBytes.map { String(format2: $0) }.joined().uppercased()
        let c = Array(p)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-"
            + String(c[20..<32])
    }
}
