import Testing

@testable import NetBoot

@Suite("TFTP send window")
struct TFTPSendWindowTests {
    @Test func blockCountIncludesTheShortLastBlock() {
        #expect(TFTPSendWindow(size: 0, blockSize: 512, windowSize: 1).blockCount == 1)
        #expect(TFTPSendWindow(size: 511, blockSize: 512, windowSize: 1).blockCount == 1)
        #expect(TFTPSendWindow(size: 512, blockSize: 512, windowSize: 1).blockCount == 2)
        let window = TFTPSendWindow(size: 1000, blockSize: 512, windowSize: 1)
        #expect(window.byteRange(of: 2, size: 1000) == 512..<1000)
    }

    @Test func duplicateAcksNeverCauseASendInLockStep() {
        var window = TFTPSendWindow(size: 2048, blockSize: 512, windowSize: 1)
        #expect(window.nextWindow() == 1...1)
        #expect(window.receive(ack: 1) == .advanced)
        #expect(window.nextWindow() == 2...2)
        // The client's timer fired and it repeats ACK 1: no resend (Sorcerer's Apprentice), however often.
        for _ in 0..<5 { #expect(window.receive(ack: 1) == .duplicate) }
        #expect(window.receive(ack: 3) == .outOfWindow)
        #expect(window.receive(ack: 2) == .advanced)
        #expect(window.acknowledged == 2)
    }

    @Test func windowsRestartFromTheLastBlockTheClientHas() {
        var window = TFTPSendWindow(size: 100 * 512, blockSize: 512, windowSize: 16)
        #expect(window.nextWindow() == 1...16)
        // Block 6 was lost: the RFC 7440 receiver acknowledges 5, and the next window starts at 6.
        #expect(window.receive(ack: 5) == .advanced)
        #expect(window.nextWindow() == 6...21)
        // Block 6 lost again: ACK 5 repeats; that asks for the window again, once.
        #expect(window.receive(ack: 5) == .resend)
        #expect(window.currentWindow == 6...21)
        #expect(window.receive(ack: 5) == .duplicate)
        #expect(window.receive(ack: 21) == .advanced)
        #expect(window.nextWindow() == 22...37)
    }

    @Test func blockNumbersRollOverPast65535() {
        // 70000 full blocks and an empty one: a client that counts 16 bits must see 65535, 0, 1, ...
        let blockSize = 512
        var window = TFTPSendWindow(size: 70_000 * blockSize, blockSize: blockSize, windowSize: 4)
        var sent: [UInt16] = []
        var outcome = TFTPSendWindow.AckOutcome.advanced
        while outcome != .complete {
            let blocks = window.nextWindow()
            for block in blocks where (65534...65538).contains(block) { sent.append(TFTPSendWindow.wireNumber(block)) }
            outcome = window.receive(ack: TFTPSendWindow.wireNumber(blocks.upperBound))
            #expect(outcome == .advanced || outcome == .complete)
        }
        #expect(sent == [65534, 65535, 0, 1, 2])
        #expect(window.acknowledged == 70_001)
        #expect(window.isComplete)
    }

    @Test func staleAcksFromBeforeARolloverAreIgnored() {
        var window = TFTPSendWindow(size: 70_000 * 512, blockSize: 512, windowSize: 1)
        while window.acknowledged < 65_540 {
            let block = window.nextWindow().lowerBound
            _ = window.receive(ack: TFTPSendWindow.wireNumber(block))
        }
        _ = window.nextWindow()
        #expect(window.receive(ack: 65535) == .outOfWindow)
        #expect(window.receive(ack: 4) == .duplicate)
        #expect(window.receive(ack: 5) == .advanced)
    }
}
