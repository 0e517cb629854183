import Foundation
import KilnTestSupport
import Logging
import NIOCore
import Testing

@testable import NetBoot

/// What a TFTP client may ask for, and what it may put in kiln's log.
@Suite("TFTP: options a client may not stretch, names it may not inject", .serialized)
struct TFTPLimitsTests {
    @Test func timeoutIsAcceptedOnlyUpToThreeSeconds() throws {
        for (asked, granted) in [("1", 1), ("3", 3), ("4", nil), ("255", nil)] as [(String, Int?)] {
            let parameters = try TFTPNegotiation.negotiate(
                [TFTPOption(name: "timeout", value: asked), TFTPOption(name: "tsize", value: "0")], transferSize: 10)
            #expect(parameters.timeoutSeconds == granted, "timeout=\(asked)")
            // RFC 2349: a value the server does not accept is left out, never answered with another one.
            #expect(parameters.acknowledged.contains { $0.name == "timeout" } == (granted != nil))
            #expect(parameters.acknowledged.contains { $0.name == "tsize" && $0.value == "10" })
        }
    }

    @Test func anOptionAcknowledgementAlwaysFitsOneDatagram() throws {
        // Unknown options are ignored, so a long OACK can only come from long values of known ones.
        let options = [
            TFTPOption(name: "blksize", value: "8"), TFTPOption(name: "tsize", value: "0"),
            TFTPOption(name: "windowsize", value: "4"), TFTPOption(name: "timeout", value: "2"),
        ]
        let parameters = try TFTPNegotiation.negotiate(options, transferSize: 123_456_789)
        #expect(parameters.acknowledged.count == 4)
        var padded = parameters
        padded.acknowledged.append(TFTPOption(name: String(repeating: "x", count: 600), value: "1"))
        TFTPNegotiation.trimToOneDatagram(&padded)
        #expect(padded.acknowledged == parameters.acknowledged)
        padded.acknowledged.insert(TFTPOption(name: String(repeating: "y", count: 600), value: "1"), at: 0)
        TFTPNegotiation.trimToOneDatagram(&padded)
        #expect(padded.acknowledged.isEmpty)
        #expect(padded.blockSize == 512 && padded.windowSize == 1 && padded.timeoutSeconds == nil)
    }

    /// blksize=8 and several options: the OACK is one datagram (with UDP segmentation offload on the
    /// transfer's socket, the kernel used to cut it into 12-byte pieces).
    @Test func smallBlocksAndSeveralOptionsGiveOneOACK() async throws {
        let folder = try TemporaryFolder()
        _ = try folder.randomFile("root/f.bin", size: 3000)
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let client = try RawUDP()
            let options = [("blksize", "8"), ("tsize", "0"), ("windowsize", "8"), ("timeout", "2")]
            client.send(Wire.rrq("f.bin", options: options), to: server.port)
            // Generous waits: a loaded machine answers late, never wrongly.
            let oack = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no OACK")
            #expect(Wire.opcode(oack.bytes) == 6)
            let text = String(decoding: oack.bytes.dropFirst(2), as: UTF8.self)
            let fields = text.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
            #expect(fields == ["blksize", "8", "tsize", "3000", "windowsize", "8", "timeout", "2"], "\(fields)")
            #expect(await client.receiveOffPool(timeout: .milliseconds(300)) == nil, "a second piece followed")
            client.send(Wire.ack(0), to: oack.port)
            // The OACK again (its 2 s timeout passed before our ACK 0 arrived) is no answer yet.
            var data = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no DATA after ACK 0")
            while Wire.opcode(data.bytes) == 6 {
                data = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no DATA after ACK 0")
            }
            #expect(Wire.opcode(data.bytes) == 3 && Wire.number(data.bytes) == 1 && data.bytes.count == 12)
        }
    }

    /// A client that asks for timeout=255 and then says nothing: the transfer ends after the server's
    /// patience, not after four times 255 s.
    @Test func aSilentClientCannotHoldATransferWithALongTimeout() async throws {
        let folder = try TemporaryFolder()
        _ = try folder.randomFile("root/f.bin", size: 3000)
        let root = try BootRoot(folder.path + "/root")
        var configuration = TFTPServerConfiguration(root: root)
        configuration.patience = .seconds(2)
        let tftp = try await TFTPServer.bind(
            host: "127.0.0.1", port: 0, configuration: configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await tftp.run() }
            let client = try RawUDP()
            client.send(Wire.rrq("f.bin", options: [("timeout", "255")]), to: tftp.boundAddress.port)
            let first = try #require(await client.receiveOffPool(timeout: .seconds(10)), "no answer")
            // timeout=255 is not acknowledged: with no other option there is no OACK, DATA 1 comes at once.
            #expect(Wire.opcode(first.bytes) == 3)
            #expect(tftp.activeTransfers == 1)
            let started = ContinuousClock.now
            while tftp.activeTransfers > 0 && ContinuousClock.now - started < .seconds(30) {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(tftp.activeTransfers == 0, "the transfer was still running after 30 s")
            #expect(ContinuousClock.now - started < .seconds(10))
            group.cancelAll()
        }
    }

    /// A file name with a newline cannot forge a line of kiln's log.
    @Test func fileNamesAreEscapedInTheLog() async throws {
        let folder = try TemporaryFolder()
        _ = try folder.randomFile("root/f.bin", size: 100)
        try await withKilnServer(root: folder.path + "/root", logDir: folder.path) { server in
            let client = try RawUDP()
            let forged = "nothing\nkiln: tftp: sent file=/etc/shadow\r\u{1b}[2J"
            client.send(Wire.rrq(forged), to: server.port)
            _ = await client.receiveOffPool(timeout: .seconds(2))
            client.send(Wire.request(2, Array("up\nkiln: forged write".utf8)), to: server.port)
            _ = await client.receiveOffPool(timeout: .seconds(2))
            try await Task.sleep(for: .milliseconds(300))
            let log = server.logText
            #expect(log.contains("nothing\\nkiln: tftp: sent file=/etc/shadow\\r\\x1b[2J"), "\(log)")
            let lines = log.split(separator: "\n")
            #expect(!lines.contains { $0.hasPrefix("kiln: tftp: sent file=/etc/shadow") }, "\(log)")
            #expect(!lines.contains { $0.hasPrefix("kiln: forged") }, "\(log)")
            #expect(!log.contains("\u{1b}"))
        }
    }

    @Test func logTextEscapesControlsAndBadUTF8() {
        #expect(LogText.escape("a\nb") == "a\\nb")
        #expect(LogText.escape("tab\there \"q\" back\\slash") == "tab\\there \\\"q\\\" back\\\\slash")
        #expect(LogText.escape([0x61, 0xFF, 0x0A]) == "a\\xff\\x0a")
        #expect(LogText.escape("é ok") == "é ok")
        #expect(LogText.escape("\u{2028}") == "\\u{2028}")
    }
}
