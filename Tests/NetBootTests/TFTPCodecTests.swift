import NIOCore
import Testing

@testable import NetBoot

@Suite("TFTP packets")
struct TFTPPacketTests {
    private func bytes(_ packet: TFTPPacket) -> [UInt8] {
        Array(packet.encoded().readableBytesView)
    }

    private func decode(_ bytes: [UInt8]) throws -> TFTPPacket {
        try TFTPPacket.decode(ByteBuffer(bytes: bytes))
    }

    @Test func readRequestWithOptionsHasRFC2347Layout() throws {
        let request = TFTPRequest(
            filename: "pxelinux.0", mode: "octet",
            options: [TFTPOption(name: "blksize", value: "1468"), TFTPOption(name: "tsize", value: "0")])
        let expected = Array("\0\u{1}pxelinux.0\0octet\0blksize\u{0}1468\0tsize\u{0}0\0".utf8)
        #expect(bytes(.readRequest(request)) == expected)
        #expect(try decode(expected) == .readRequest(request))
    }

    @Test func fixedLayoutsAreBigEndian() throws {
        #expect(bytes(.acknowledgement(block: 0x1234)) == [0, 4, 0x12, 0x34])
        #expect(bytes(.data(block: 0xFFFF, payload: ByteBuffer(bytes: [9]))) == [0, 3, 0xFF, 0xFF, 9])
        #expect(bytes(.error(code: .unknownTransferID, message: "x")) == [0, 5, 0, 5, 0x78, 0])
        let optionAck = TFTPPacket.optionAcknowledgement([TFTPOption(name: "windowsize", value: "16")])
        #expect(bytes(optionAck) == Array("\0\u{6}windowsize\u{0}16\0".utf8))
        #expect(try decode([0, 4, 0xAB, 0xCD]) == .acknowledgement(block: 0xABCD))
        #expect(try decode([0, 3, 0, 1]) == .data(block: 1, payload: ByteBuffer()))
    }

    static let malformed: [[UInt8]] = [
        [], [0], [0, 9, 0, 0], [0, 0], [0, 4, 1], [0, 5],
        Array("\0\u{1}file".utf8),
        Array("\0\u{1}file\0octet".utf8),
        Array("\0\u{1}file\0octet\0blksize\0".utf8),
        Array("\0\u{1}file\0octet\0blksize".utf8),
    ]

    @Test(arguments: malformed)
    func malformedPacketsAreRejected(_ raw: [UInt8]) {
        #expect(throws: NetBootError.self) { try decode(raw) }
    }

    @Test func trailingPaddingAfterOptionsIsTolerated() throws {
        let raw = Array("\0\u{1}f\0octet\0\0\0".utf8)
        #expect(try decode(raw) == .readRequest(TFTPRequest(filename: "f", mode: "octet")))
    }
}

@Suite("TFTP option negotiation")
struct TFTPNegotiationTests {
    private func options(_ pairs: [(String, String)]) -> [TFTPOption] {
        pairs.map { TFTPOption(name: $0.0, value: $0.1) }
    }

    @Test func acceptedOptionsAreEchoedInTheClientsOrder() throws {
        let parameters = try TFTPNegotiation.negotiate(
            options([("TSIZE", "0"), ("blksize", "1468"), ("windowsize", "16"), ("timeout", "3"), ("color", "blue")]),
            transferSize: 4096)
        #expect(parameters.blockSize == 1468)
        #expect(parameters.windowSize == 16)
        #expect(parameters.timeoutSeconds == 3)
        #expect(
            parameters.acknowledged
                == options([("TSIZE", "4096"), ("blksize", "1468"), ("windowsize", "16"), ("timeout", "3")]))
    }

    @Test func noOptionsMeansNoOptionAcknowledgement() throws {
        let parameters = try TFTPNegotiation.negotiate([], transferSize: 10)
        #expect(parameters.acknowledged.isEmpty)
        #expect(parameters.blockSize == 512 && parameters.windowSize == 1)
    }

    @Test(arguments: [
        ("blksize", "0"), ("blksize", "7"), ("blksize", "65465"), ("blksize", "100000"),
        ("blksize", "abc"), ("blksize", "-8"), ("blksize", ""), ("windowsize", "0"), ("windowsize", "65536"),
    ])
    func outOfRangeValuesAreRefused(_ option: (String, String)) {
        #expect(throws: NetBootError.self) {
            try TFTPNegotiation.negotiate(options([option]), transferSize: 1)
        }
    }

    @Test func rangeEdgesAreAcceptedAndLimitsApplied() throws {
        #expect(try TFTPNegotiation.negotiate(options([("blksize", "8")]), transferSize: 1).blockSize == 8)
        #expect(try TFTPNegotiation.negotiate(options([("blksize", "65464")]), transferSize: 1).blockSize == 65464)
        let limited = try TFTPNegotiation.negotiate(
            options([("windowsize", "65535")]), transferSize: 1, limits: TFTPLimits(maximumWindowSize: 32))
        #expect(limited.windowSize == 32)
        #expect(limited.acknowledged == options([("windowsize", "32")]))
        // 32 blocks of 8192 would be 256 KiB in flight: the window is cut to 128 KiB, whatever the order.
        let fitted = try TFTPNegotiation.negotiate(
            options([("windowsize", "32"), ("blksize", "8192")]), transferSize: 1)
        #expect(fitted.windowSize == 16)
        #expect(fitted.acknowledged == options([("windowsize", "16"), ("blksize", "8192")]))
        #expect(
            try TFTPNegotiation.negotiate(options([("blksize", "65464"), ("windowsize", "4")]), transferSize: 1)
                .windowSize == 2)
        #expect(
            try TFTPNegotiation.negotiate(options([("blksize", "65464"), ("windowsize", "1")]), transferSize: 1)
                .windowSize == 1)
    }

    @Test func badTimeoutAndUnknownSizeAreLeftOut() throws {
        let parameters = try TFTPNegotiation.negotiate(options([("timeout", "0"), ("tsize", "0")]), transferSize: nil)
        #expect(parameters.acknowledged.isEmpty)
        #expect(parameters.timeoutSeconds == nil)
    }

    @Test func modes() throws {
        #expect(try TFTPNegotiation.mode("OCTET") == .octet)
        #expect(try TFTPNegotiation.mode("NetASCII") == .netascii)
        #expect(throws: NetBootError.self) { try TFTPNegotiation.mode("mail") }
    }

    @Test func netasciiRoundTrip() {
        let text = Array("a\nb\rc\r\n".utf8)
        let wire = Netascii.encode(text)
        #expect(wire == Array("a\r\nb\r\0c\r\0\r\n".utf8))
        #expect(Netascii.decode(wire) == text)
    }
}
