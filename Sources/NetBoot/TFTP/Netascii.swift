/// RFC 1350's netascii as RFC 764 (Telnet) defines it: a line ends in CR LF and a bare CR is sent as CR NUL.
package enum Netascii {
    /// Converts local text (lines ending in LF) to netascii.
    package static func encode<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount + bytes.underestimatedCount / 16)
        for byte in bytes {
            switch byte {
            case 0x0A: out.append(contentsOf: [0x0D, 0x0A])
            case 0x0D: out.append(contentsOf: [0x0D, 0x00])
            default: out.append(byte)
            }
        }
        return out
    }

    /// Converts netascii back to local text: CR LF to LF, CR NUL to CR.
    package static func decode<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        var pendingCR = false
        for byte in bytes {
            if pendingCR {
                pendingCR = false
                switch byte {
                case 0x0A: out.append(0x0A); continue
                case 0x00: out.append(0x0D); continue
                default: out.append(0x0D)
                }
            }
            if byte == 0x0D { pendingCR = true } else { out.append(byte) }
        }
        if pendingCR { out.append(0x0D) }
        return out
    }
}
