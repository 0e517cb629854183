import NIOCore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The bytes one transfer sends: an open file read at offsets (so a window can be sent again), or a
/// buffer generated in memory.
final class TFTPSource: @unchecked Sendable {
    // @unchecked: immutable after init; the descriptor is only read with pread, which has no shared offset.
    private enum Storage {
        case file(Int32)
        case memory(ByteBuffer)
    }

    private let storage: Storage
    let size: Int

    /// Takes ownership of `descriptor`.
    init(descriptor: Int32, size: Int) {
        storage = .file(descriptor)
        self.size = size
    }

    init(bytes: ByteBuffer) {
        storage = .memory(bytes)
        size = bytes.readableBytes
    }

    /// The open file, when the bytes come from one (HTTP sends it with sendfile).
    var fileDescriptor: Int32? {
        if case .file(let descriptor) = storage { return descriptor }
        return nil
    }

    /// Whether the bytes are in memory, where a block costs a copy and nothing more.
    var isInMemory: Bool {
        if case .memory = storage { return true }
        return false
    }

    deinit {
        if case .file(let descriptor) = storage { close(descriptor) }
    }

    /// Reads everything (for netascii, which changes the length of the text).
    func readAll() throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        try read(offset: 0, length: size, into: &buffer)
        return buffer
    }

    /// Appends `length` bytes from `offset` to `buffer`.
    /// - Throws: `NetBootError(.io)` when the file is shorter than it was or cannot be read.
    func read(offset: Int, length: Int, into buffer: inout ByteBuffer) throws {
        guard length > 0 else { return }
        switch storage {
        case .memory(let bytes):
            guard let slice = bytes.getSlice(at: bytes.readerIndex + offset, length: length) else {
                throw NetBootError(.io, "read past the end of a generated file")
            }
            buffer.writeImmutableBuffer(slice)
        case .file(let descriptor):
            var done = 0
            while done < length {
                // EINTR is retried by the read; an error, like the end of the file, ends the transfer.
                let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - done) { pointer in
                    let wanted = UnsafeMutableRawBufferPointer(rebasing: pointer[..<(length - done)])
                    return
                        (try? FileDescriptor(rawValue: descriptor).read(
                            fromAbsoluteOffset: Int64(offset + done), into: wanted)) ?? 0
                }
                guard count > 0 else {
                    throw NetBootError(.io, "file became shorter or unreadable during the transfer")
                }
                done += count
            }
        }
    }
}

/// A file's bytes read ahead in chunks of several blocks, so that sending a block costs a copy rather than
/// a system call. Owned by one transfer and used on its event loop only.
struct TFTPReadAhead {
    /// The bytes from `start` on; reused for every chunk (cleared, not reallocated).
    private var chunk: ByteBuffer
    private var start = 0
    private let chunkLength: Int

    /// Chunks of at least `minimumLength` bytes (a whole window), and at least 64 KiB in whole blocks.
    init(blockSize: Int, minimumLength: Int, allocator: ByteBufferAllocator) {
        let blocks = max(1, (64 * 1024) / blockSize)
        chunkLength = max(minimumLength, blocks * blockSize)
        chunk = allocator.buffer(capacity: 0)
    }

    /// Appends the bytes of `range` (within the source's size) to `buffer`.
    /// - Throws: `NetBootError(.io)` when the source cannot be read.
    mutating func read(_ range: Range<Int>, from source: TFTPSource, into buffer: inout ByteBuffer) throws {
        guard !range.isEmpty else { return }
        if source.isInMemory {
            try source.read(offset: range.lowerBound, length: range.count, into: &buffer)
            return
        }
        if range.lowerBound < start || range.upperBound > start + chunk.readableBytes {
            start = range.lowerBound
            chunk.clear()
            let length = min(max(chunkLength, range.count), source.size - start)
            try source.read(offset: start, length: length, into: &chunk)
        }
        guard let bytes = chunk.getSlice(at: chunk.readerIndex + range.lowerBound - start, length: range.count) else {
            throw NetBootError(.io, "read-ahead buffer shorter than expected")
        }
        buffer.writeImmutableBuffer(bytes)
    }
}
