/// What the server agrees to for one read transfer: the outcome of RFC 2347 option negotiation.
package struct TFTPTransferParameters: Sendable, Equatable {
    /// RFC 2348: bytes of data per DATA packet, 8...65464 (512 without the option).
    package var blockSize: Int = 512
    /// RFC 7440: DATA packets sent before waiting for an ACK (1 without the option).
    package var windowSize: Int = 1
    /// RFC 2349: the retransmission timeout the client asked for, in seconds.
    package var timeoutSeconds: Int?
    /// The options to acknowledge in an OACK, in the client's order; empty means no OACK (RFC 1350 behaviour).
    package var acknowledged: [TFTPOption] = []

    package init() {}
}

/// The server's limits on what a client may ask for.
package struct TFTPLimits: Sendable, Equatable {
    /// The largest window the server accepts; larger requests are answered with this (RFC 7440 section 3).
    package var maximumWindowSize: Int = 64
    /// The largest block the server accepts; larger requests within RFC 2348's range get this.
    package var maximumBlockSize: Int = TFTPNegotiation.blockSizeRange.upperBound
    /// The most data in one window. A window of 64 blocks of 8 KiB (512 KiB) overflows a client's default
    /// 208 KiB socket buffer (and small NIC rings on a LAN), and every loss then costs a timeout; a smaller
    /// window is granted instead (RFC 7440 section 3 lets the server answer a smaller value). 128 KiB, 16
    /// blocks of 8 KiB, arrives whole at atftp on loopback, and carries 25% more than 64 KiB windows.
    package var maximumWindowBytes: Int = 128 * 1024
    /// The longest `timeout` (RFC 2349) accepted; a longer one is left out of the OACK (the RFC lets a
    /// server decline, not lower, the value). 3 s keeps the server's back-off (twice the client's
    /// timeout, 6 s) and its 20 s limit on a silent client: with `timeout=255` accepted, one 28-byte
    /// request held a transfer and its thread for 18 minutes.
    package var maximumTimeout: Int = 3

    package init(
        maximumWindowSize: Int = 64, maximumBlockSize: Int = TFTPNegotiation.blockSizeRange.upperBound,
        maximumWindowBytes: Int = 128 * 1024, maximumTimeout: Int = 3
    ) {
        self.maximumTimeout = maximumTimeout
        self.maximumWindowSize = maximumWindowSize
        self.maximumBlockSize = maximumBlockSize
        self.maximumWindowBytes = maximumWindowBytes
    }
}

/// RFC 2347 negotiation for a read request.
package enum TFTPNegotiation {
    /// RFC 2348 section "Block Size Option Specification".
    package static let blockSizeRange = 8...65464
    /// RFC 2349: timeout in seconds.
    package static let timeoutRange = 1...255
    /// RFC 7440: window size.
    package static let windowSizeRange = 1...65535

    /// The transfer modes of RFC 1350; `mail` is for writes and so refused.
    package enum Mode: Sendable, Equatable {
        case octet
        case netascii
    }

    /// Parses the mode of a read request.
    /// - Throws: `NetBootError(.refused)` for `mail` or an unknown mode.
    package static func mode(_ text: String) throws -> Mode {
        switch text.lowercased() {
        case "octet": return .octet
        case "netascii": return .netascii
        default: throw NetBootError(.refused, "unsupported transfer mode '\(text)'")
        }
    }

    /// Checks the options of a request before the file is looked at: values out of their RFC's range are
    /// refused (ERROR 8), unknown options ignored (RFC 2347), repeats of an option ignored.
    ///
    /// - Parameters:
    ///   - options: the request's options.
    ///   - transferSize: the size the transfer will have, for `tsize` (RFC 2349); nil to leave `tsize` out.
    ///   - limits: the server's limits.
    /// - Throws: `NetBootError(.refused)` naming the option and value.
    package static func negotiate(
        _ options: [TFTPOption], transferSize: Int?, limits: TFTPLimits = TFTPLimits()
    ) throws -> TFTPTransferParameters {
        var parameters = TFTPTransferParameters()
        var seen: Set<String> = []
        var windowIndex: Int?
        for option in options {
            let name = option.name.lowercased()
            guard !seen.contains(name) else { continue }
            seen.insert(name)
            switch name {
            case "blksize":
                guard let value = decimal(option.value), blockSizeRange.contains(value) else {
                    throw NetBootError(.refused, "blksize '\(option.value)' is outside 8...65464")
                }
                parameters.blockSize = min(value, limits.maximumBlockSize)
                parameters.acknowledged.append(TFTPOption(name: option.name, value: "\(parameters.blockSize)"))
            case "windowsize":
                guard let value = decimal(option.value), windowSizeRange.contains(value) else {
                    throw NetBootError(.refused, "windowsize '\(option.value)' is outside 1...65535")
                }
                parameters.windowSize = min(value, limits.maximumWindowSize)
                windowIndex = parameters.acknowledged.count
                parameters.acknowledged.append(TFTPOption(name: option.name, value: "\(parameters.windowSize)"))
            case "timeout":
                // RFC 2349: a server that does not accept the value leaves the option out of the OACK.
                guard let value = decimal(option.value), timeoutRange.contains(value),
                    value <= limits.maximumTimeout
                else { continue }
                parameters.timeoutSeconds = value
                parameters.acknowledged.append(TFTPOption(name: option.name, value: "\(value)"))
            case "tsize":
                // A read request carries 0; the answer is the size (RFC 2349). Unknown size: leave it out.
                guard decimal(option.value) != nil, let transferSize else { continue }
                parameters.acknowledged.append(TFTPOption(name: option.name, value: "\(transferSize)"))
            default:
                continue
            }
        }
        // The block size is known only once every option is read: then the window is fitted to the byte cap.
        if let windowIndex {
            let fitted = max(1, min(parameters.windowSize, limits.maximumWindowBytes / parameters.blockSize))
            parameters.windowSize = fitted
            parameters.acknowledged[windowIndex].value = "\(fitted)"
        }
        trimToOneDatagram(&parameters)
        return parameters
    }

    /// The longest OACK sent: the size RFC 2347 allows a request, which every client reads whole.
    package static let maximumAcknowledgementSize = 512

    /// Drops options from the end of the OACK until it fits in `maximumAcknowledgementSize` bytes,
    /// putting back the RFC 1350 default of each one dropped: an OACK is one datagram, never split.
    static func trimToOneDatagram(_ parameters: inout TFTPTransferParameters) {
        func size() -> Int {
            2 + parameters.acknowledged.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 }
        }
        while size() > maximumAcknowledgementSize, let dropped = parameters.acknowledged.popLast() {
            switch dropped.name.lowercased() {
            case "blksize": parameters.blockSize = 512
            case "windowsize": parameters.windowSize = 1
            case "timeout": parameters.timeoutSeconds = nil
            default: break
            }
        }
    }

    /// A non-negative decimal of at most 10 digits, nothing else (no sign, no spaces).
    static func decimal(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return Int(text)
    }
}
