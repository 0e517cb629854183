import Foundation
import Synchronization

/// Sequential output through a small ring of buffers: one fills while the others are written, in
/// order, by a background thread, so that writing overlaps reading the source.
///
/// The buffers are small (1 MiB) so that the bytes just copied in are still in the CPU cache when the
/// kernel copies them into the page cache: with 8 MiB buffers every copy came from memory and a
/// conversion took 3-5 times as long. Four of them let the filling thread run ahead of a writer that
/// is not scheduled at once on a busy machine, instead of waiting for it after every buffer.
///
/// Every buffer starts on a `ImageFile.directAlignment` boundary of the file and is handed over only
/// up to such a boundary (the few bytes past it move to the next buffer), so the bulk of the output
/// can go to the device with O_DIRECT instead of through the page cache.
final class AppendBuffer {
    let file: ImageFile
    private(set) var position: UInt64
    private let capacity = 1 << 20
    private static let depth = 4
    private var buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    /// The file offset of `buffer[0]`, always aligned.
    private var bufferStart: UInt64
    private let ring: BufferRing
    private let writer = DispatchQueue(label: "kiln.append-buffer")
    private let pending = DispatchGroup()
    private let failure = WriteFailure()
    private static let align = ImageFile.directAlignment

    /// Appends from `position`; bytes already in the file between the aligned offset before it and
    /// `position` are kept (they are read back into the first buffer).
    init(file: ImageFile, position: UInt64) throws(DiskImageError) {
        self.file = file
        self.position = position
        bufferStart = position - position % UInt64(AppendBuffer.align)
        ring = BufferRing(count: AppendBuffer.depth, capacity: capacity, alignment: AppendBuffer.align)
        buffer = ring.take()
        used = Int(position - bufferStart)
        if used > 0 {
            try file.readPadded(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<used]), at: bufferStart)
        }
    }

    deinit {
        pending.wait()
        ring.give(buffer)
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(DiskImageError) {
        guard let source = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            // `hand` swaps the buffers: take the current one's address on every round.
            guard let target = buffer.baseAddress else { return }
            let n = min(bytes.count - done, capacity - used)
            (target + used).copyMemory(from: source + done, byteCount: n)
            used += n
            done += n
            position += UInt64(n)
            if used == capacity { try hand() }
        }
    }

    func append(_ bytes: [UInt8]) throws(DiskImageError) {
        var failure: DiskImageError?
        bytes.withUnsafeBytes { raw in
            do throws(DiskImageError) { try append(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Moves on to `target` (at or past `position`) leaving what lies between as it is in the file: a
    /// hole in a fresh file, so zeros. Short gaps are filled with zeros instead.
    func skip(to target: UInt64) throws(DiskImageError) {
        precondition(target >= position, "AppendBuffer only moves forward")
        if target - position < UInt64(AppendBuffer.align) * 16 {
            try append([UInt8](repeating: 0, count: Int(target - position)))
            return
        }
        // Finish the current page with zeros (the gap reads as zeros anyway) and hand the buffer over
        // whole; the next one starts at the page that holds `target`.
        try append([UInt8](repeating: 0, count: Int(position.roundedUp(to: UInt64(AppendBuffer.align)) - position)))
        try hand()
        bufferStart = target - target % UInt64(AppendBuffer.align)
        used = Int(target - bufferStart)
        if let base = buffer.baseAddress { base.initializeMemory(as: UInt8.self, repeating: 0, count: used) }
        position = target
    }

    /// Appends zeros up to the next multiple of `alignment`.
    func pad(to alignment: UInt64) throws(DiskImageError) {
        let target = position.roundedUp(to: alignment)
        if target > position { try append([UInt8](repeating: 0, count: Int(target - position))) }
    }

    /// Starts writing the buffer up to its last aligned byte in the background and moves on to the next
    /// free one of the ring, which receives the unaligned rest.
    private func hand() throws(DiskImageError) {
        if let error = failure.get() { throw error }
        let whole = used - used % AppendBuffer.align
        guard whole > 0 else { return }
        let next = ring.take()
        let rest = used - whole
        if rest > 0, let from = buffer.baseAddress, let to = next.baseAddress {
            to.copyMemory(from: from + whole, byteCount: rest)
        }
        let full = UnsafeSendableBuffer(buffer, count: whole)
        let offset = bufferStart
        let file = self.file
        let failure = self.failure
        let ring = self.ring
        writer.async(group: pending) {
            do throws(DiskImageError) {
                try AppendBuffer.writeSkippingZeros(full.bytes, to: file, at: offset)
            } catch {
                failure.set(error)
            }
            ring.give(full.value)
        }
        buffer = next
        used = rest
        bufferStart += UInt64(whole)
    }

    private func wait() throws(DiskImageError) {
        pending.wait()
        if let error = failure.get() { throw error }
    }

    /// Writes everything appended so far; the file is up to date afterwards and appending may go on.
    func flush() throws(DiskImageError) {
        try hand()
        try wait()
        if used > 0 {
            // The unaligned tail goes through the page cache now and stays in the buffer, to be written
            // again whole (and aligned) when more follows.
            try AppendBuffer.writeSkippingZeros(
                UnsafeRawBufferPointer(rebasing: buffer[0..<used]), to: file, at: bufferStart)
        }
        // Zero pages at the end were skipped: the file must still reach `position`.
        if try file.size < position { try file.truncate(to: position) }
    }

    /// Writes the non-zero 4 KiB pages of `bytes`, leaving holes for zero ones: the output only ever
    /// grows into fresh space, which reads as zero, so the holes cost nothing and save disk space.
    static func writeSkippingZeros(_ bytes: UnsafeRawBufferPointer, to file: ImageFile, at offset: UInt64)
        throws(DiskImageError)
    {
        let page = 4096
        var runStart: Int? = nil
        var i = 0
        while i < bytes.count {
            let n = min(page, bytes.count - i)
            let zero = ZeroCheck.isZero(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
            if zero, let start = runStart {
                try file.writeBulk(UnsafeRawBufferPointer(rebasing: bytes[start..<i]), at: offset + UInt64(start))
                runStart = nil
            } else if !zero && runStart == nil {
                runStart = i
            }
            i += n
        }
        if let start = runStart {
            try file.writeBulk(UnsafeRawBufferPointer(rebasing: bytes[start...]), at: offset + UInt64(start))
        }
    }
}

/// The first error of a background write.
private final class WriteFailure: Sendable {
    private let error = Mutex<DiskImageError?>(nil)
    func set(_ e: DiskImageError) { error.withLock { $0 = $0 ?? e } }
    func get() -> DiskImageError? { error.withLock { $0 } }
}

/// A buffer handed to the writer thread, which is its only user until it gives it back to the ring.
private struct UnsafeSendableBuffer: @unchecked Sendable {
    // @unchecked: the owner does not touch the memory until the background write has given it back.
    let value: UnsafeMutableRawBufferPointer
    let count: Int
    init(_ value: UnsafeMutableRawBufferPointer, count: Int) {
        self.value = value
        self.count = count
    }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: value[0..<count]) }
}

/// A buffer nobody uses, waiting in the ring.
private struct FreeBuffer: @unchecked Sendable {
    // @unchecked: no one touches the memory while it is in the ring.
    let value: UnsafeMutableRawBufferPointer
}

/// The ring's free buffers: `take` waits until the writer has given one back.
private final class BufferRing: @unchecked Sendable {
    // @unchecked: raw buffer pointers; `free` is only touched inside its mutex, `all` is immutable.
    private let available: DispatchSemaphore
    private let free: Mutex<[FreeBuffer]>
    private let all: [UnsafeMutableRawBufferPointer]

    init(count: Int, capacity: Int, alignment: Int) {
        all = (0..<max(2, count)).map { _ in .allocate(byteCount: capacity, alignment: alignment) }
        free = Mutex(all.map(FreeBuffer.init))
        // Counted up from zero: libdispatch refuses to free a semaphore below its initial value.
        available = DispatchSemaphore(value: 0)
        for _ in all { available.signal() }
    }

    deinit { for buffer in all { buffer.deallocate() } }

    func take() -> UnsafeMutableRawBufferPointer {
        available.wait()
        return free.withLock { $0.removeLast() }.value
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        free.withLock { $0.append(FreeBuffer(value: buffer)) }
        available.signal()
    }
}
