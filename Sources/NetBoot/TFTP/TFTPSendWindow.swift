/// The sender's side of a read transfer: which blocks to send, and what an ACK means (RFC 1350 with
/// RFC 7440 windows).
///
/// Blocks are counted here with absolute numbers from 1; on the wire they are the low 16 bits, so block
/// 65536 goes out as 0 and the count goes on (the rollover that tftp-hpa, atftp and curl all follow).
/// A transfer of `size` bytes has `size / blockSize + 1` blocks: the last one is shorter than a block,
/// possibly empty, and marks the end.
///
/// A duplicate ACK never causes a retransmission by itself in lock-step mode (RFC 1350's Sorcerer's
/// Apprentice bug): only the retransmission timer does. With windows, a duplicate ACK of the window's
/// base is how RFC 7440 receivers report that the window's first block was lost, so it restarts the
/// window, at most once per window sent, which bounds the extra traffic to one window.
package struct TFTPSendWindow: Sendable, Equatable {
    package let blockCount: Int
    package let blockSize: Int
    package let windowSize: Int
    /// The highest block the client acknowledged (0 before any).
    package private(set) var acknowledged = 0
    /// The highest block sent in the current window.
    package private(set) var sentThrough = 0
    private var restartedOnDuplicate = false

    /// What an ACK did.
    package enum AckOutcome: Sendable, Equatable {
        /// The client has every block up to this one; send the next window (or finish).
        case advanced
        /// Every block is acknowledged: the transfer is complete.
        case complete
        /// A repeat of the last acknowledgement: ignored.
        case duplicate
        /// A repeat of the last acknowledgement that asks for the window again (windowed mode, once per window).
        case resend
        /// A block number outside the window (stale, or from a confused client): ignored.
        case outOfWindow
    }

    package init(size: Int, blockSize: Int, windowSize: Int) {
        precondition(size >= 0 && blockSize > 0 && windowSize > 0)
        self.blockCount = size / blockSize + 1
        self.blockSize = blockSize
        self.windowSize = windowSize
    }

    /// Whether the client has acknowledged the last block.
    package var isComplete: Bool { acknowledged == blockCount }

    /// The blocks of the next window, from the first unacknowledged one; marks them sent.
    package mutating func nextWindow() -> ClosedRange<Int> {
        let first = acknowledged + 1
        let last = min(acknowledged + windowSize, blockCount)
        sentThrough = last
        restartedOnDuplicate = false
        return first...max(first, last)
    }

    /// The window sent last, to send again after a timeout.
    package var currentWindow: ClosedRange<Int> { (acknowledged + 1)...max(acknowledged + 1, sentThrough) }

    /// Interprets an ACK carrying the 16-bit `block`.
    package mutating func receive(ack block: UInt16) -> AckOutcome {
        // Distance from the last acknowledged block, modulo 2^16: the window never exceeds 65535 blocks,
        // so the distance alone tells where in the window the ACK falls, across rollovers too.
        let distance = Int(block &- UInt16(truncatingIfNeeded: acknowledged))
        if distance == 0 {
            guard windowSize > 1, !restartedOnDuplicate, sentThrough > acknowledged else { return .duplicate }
            restartedOnDuplicate = true
            return .resend
        }
        guard distance <= sentThrough - acknowledged else { return .outOfWindow }
        acknowledged += distance
        return isComplete ? .complete : .advanced
    }

    /// The 16-bit number a block carries on the wire.
    package static func wireNumber(_ block: Int) -> UInt16 { UInt16(truncatingIfNeeded: block) }

    /// The byte range of `block` (absolute, from 1) in a transfer of `size` bytes.
    package func byteRange(of block: Int, size: Int) -> Range<Int> {
        let start = (block - 1) * blockSize
        return start..<min(start + blockSize, size)
    }
}
