import Foundation
import KilnSupport
import Synchronization

/// What to write: the target format and how.
package struct ExportOptions: Sendable {
    package var format: ImageFormat
    /// VMDK: monolithicSparse (default) or streamOptimized; VHD: dynamic (default) or fixed.
    package var subformat: ImageSubformat?
    /// qcow2: zlib-compressed clusters. (streamOptimized VMDK is always compressed.)
    package var compress: Bool
    /// zlib level for compressed output; nil takes the format's default (`DeflateSettings.standard`).
    package var compressionLevel: Int32?
    /// Compression workers; defaults to the number of active cores.
    package var threads: Int
    /// VMDK descriptor's `ddb.adapterType` (ide, lsilogic, buslogic, legacyESX).
    package var vmdkAdapter: String
    /// Text the identifiers a format stores are derived from; nil derives them from the content.
    package var seed: String?
    /// The creation time a format stores (VHD), as a Unix time; nil is now. Commands pass
    /// SOURCE_DATE_EPOCH here (a build its own), the writers never read the environment.
    package var timestamp: UInt64?
    /// Write data with O_DIRECT, past the page cache (as qemu-img's `-t none`): much less CPU, but
    /// bound by the device, so slower than the page cache unless the CPU is the scarce part.
    package var directIO = false

    package init(
        format: ImageFormat, subformat: ImageSubformat? = nil, compress: Bool = false,
        compressionLevel: Int32? = nil,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, vmdkAdapter: String? = nil, seed: String? = nil,
        timestamp: UInt64? = nil
    ) {
        self.seed = seed
        self.timestamp = timestamp
        self.format = format
        self.subformat = subformat
        self.compress = compress
        self.compressionLevel = compressionLevel
        self.threads = max(1, threads)
        self.vmdkAdapter = vmdkAdapter ?? (subformat == .streamOptimized ? "lsilogic" : "ide")
    }
}

/// Streams any image into any format: only the ranges the source says hold data are read, zero
/// blocks stay unallocated, compression runs on every core, and the output appears only when complete.
package enum ImageConverter {
    /// Converts the image at `source` (format from its magic bytes, checked against its extension).
    @discardableResult
    package static func convert(
        from source: String, to destination: String, options: ExportOptions, input: OpenOptions = OpenOptions(),
        progress: ProgressSink = .none
    ) throws(DiskImageError) -> ImageInfo {
        let reader = try DiskImage.openChecked(source, options: input)
        return try convert(reader, to: destination, options: options, progress: progress)
    }

    /// Writes `reader`'s guest bytes to `destination` in `options.format`, and returns what the written
    /// image's own reader says about it. The output appears under `destination` only when it is complete
    /// and reads back; a failure leaves nothing there (nor a temporary file).
    @discardableResult
    package static func convert(
        _ reader: any DiskReader, to destination: String, options: ExportOptions, progress: ProgressSink = .none
    ) throws(DiskImageError) -> ImageInfo {
        if let backing = reader.info.backingFile, !reader.info.backingFollowed {
            throw DiskImageError(
                .backingFile,
                "the image reads through backing file '\(backing)', which kiln does not open unless asked "
                    + "(--allow-backing: only a file beside the image, of the format the image records)")
        }
        guard reader.virtualSize <= DiskImage.maxVirtualSize else {
            throw DiskImageError(.invalidArgument, "a virtual size of \(reader.virtualSize) bytes is out of range")
        }
        let output: AtomicOutput
        let written: ImageInfo
        do { output = try AtomicOutput(destination) } catch {
            throw DiskImageError(.io, error.description)
        }
        do {
            let file = try ImageFile(writing: output.temporaryPath, displayName: destination, direct: options.directIO)
            let writer = try makeWriter(options, file: file, virtualSize: reader.virtualSize, name: destination)
            let digest = try pump(reader, into: writer, options: options, progress: progress)
            let identity =
                options.seed.map { ImageIdentity(seed: $0) }
                ?? ImageIdentity(content: digest, virtualSize: reader.virtualSize)
            try writer.finish(identity)
            // Read back what was written before it takes the final name.
            let check = try ImageFile(reading: output.temporaryPath)
            written = try DiskImage.open(check, format: options.format, options: OpenOptions(), depth: 0).info
        } catch {
            output.discard()
            throw error
        }
        do { try output.commit() } catch {
            output.discard()
            throw DiskImageError(.io, error.description)
        }
        return written
    }

    static func makeWriter(
        _ options: ExportOptions, file: ImageFile, virtualSize: UInt64, name: String
    ) throws(DiskImageError) -> any BlockWriter {
        let fileName = URL(fileURLWithPath: name).lastPathComponent
        switch options.format {
        case .raw:
            return try RawWriter(file: file, virtualSize: virtualSize)
        case .qcow2:
            return try Qcow2Writer(file: file, virtualSize: virtualSize, compressed: options.compress)
        case .vmdk:
            let stream = options.subformat == .streamOptimized
            return try VMDKWriter(
                file: file, virtualSize: virtualSize, streamOptimized: stream, adapter: options.vmdkAdapter,
                extentName: fileName)
        case .vhd:
            return try VHDWriter(
                file: file, virtualSize: virtualSize, fixed: options.subformat == .fixed, timestamp: options.timestamp)
        case .vhdx:
            return try VHDXWriter(file: file, virtualSize: virtualSize)
        case .vdi:
            return try VDIWriter(file: file, virtualSize: virtualSize)
        }
    }

    /// Feeds `writer` every non-zero block of `reader`, in order; returns the digest of those blocks
    /// when the writer stores identifiers and no seed was given (an empty digest otherwise).
    static func pump(
        _ reader: any DiskReader, into writer: any BlockWriter, options: ExportOptions, progress: ProgressSink
    ) throws(DiskImageError) -> ContentDigest {
        var digest = ContentDigest()
        let digesting = writer.storesIdentifiers && options.seed == nil
        let blockSize = writer.blockSize
        let ranges = try reader.dataRanges()
        let total = ranges.reduce(UInt64(0)) { $0 + UInt64($1.count) }
        progress(.step("convert", "converting \(formatBytes(total)) of data to \(options.format.rawValue)"))
        progress(.progress("convert", completed: 0, total: Int64(total)))

        // Uncompressed: 1 MiB, so that what is read is still in the CPU cache when it is copied out and
        // written (8 MiB batches made every copy go to memory: 3-5 times slower). Compressed: 16 MiB,
        // enough blocks for every worker between two waits.
        let batchBlocks = max(1, (writer.compression == nil ? 1 << 20 : 16 << 20) / blockSize)
        let batch = Batch(blocks: batchBlocks, blockSize: blockSize)
        var deflaters: [Deflater] = []
        if let kind = writer.compression {
            let settings = options.compressionLevel.map { DeflateSettings(level: $0) } ?? .standard(for: kind)
            for _ in 0..<options.threads { deflaters.append(try Deflater(kind, settings: settings)) }
        }
        var done: UInt64 = 0
        var lastBlock: UInt64? = nil

        func flushBatch() throws(DiskImageError) {
            if batch.count == 0 { return }
            if !deflaters.isEmpty { batch.compress(with: deflaters) }
            for i in 0..<batch.count where !batch.zero[i] {
                if !deflaters.isEmpty && batch.compressed[i] == nil {
                    throw DiskImageError(.io, "zlib failed to compress block \(batch.indices[i])")
                }
                if digesting { digest.add(block: batch.indices[i], batch.block(i)) }
                try writer.write(block: batch.indices[i], data: batch.block(i), compressed: batch.compressed[i])
            }
            batch.reset()
        }

        /// Reads the batch's blocks, one call per run of consecutive blocks, then marks the zero ones.
        func fillBatch() throws(DiskImageError) {
            var start = 0
            while start < batch.count {
                var end = start + 1
                while end < batch.count && batch.indices[end] == batch.indices[end - 1] + 1 { end += 1 }
                let run = UnsafeMutableRawBufferPointer(
                    rebasing: batch.storage[(start * blockSize)..<(end * blockSize)])
                try reader.read(into: run, at: batch.indices[start] * UInt64(blockSize))
                start = end
            }
            for slot in 0..<batch.count { batch.zero[slot] = ZeroCheck.isZero(batch.block(slot)) }
        }

        for range in ranges {
            var index = range.lowerBound / UInt64(blockSize)
            let last = (range.upperBound - 1) / UInt64(blockSize)
            if let lastBlock, index <= lastBlock { index = lastBlock + 1 }
            while index <= last {
                batch.indices[batch.count] = index
                batch.count += 1
                lastBlock = index
                index += 1
                done += UInt64(blockSize)
                if batch.count == batchBlocks {
                    try fillBatch()
                    try flushBatch()
                    progress(.progress("convert", completed: Int64(min(done, total)), total: Int64(total)))
                }
            }
        }
        try fillBatch()
        try flushBatch()
        progress(.progress("convert", completed: Int64(total), total: Int64(total)))
        return digest
    }

    static func formatBytes(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30 { return String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
        return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }
}

/// A batch of blocks read from the source, compressed in parallel, then written in order.
private final class Batch: @unchecked Sendable {
    // @unchecked: during `compress`, each worker touches only its own slots of `compressed` and reads
    // only its own blocks of `storage`; everything else happens on the converting thread.
    let blockSize: Int
    let storage: UnsafeMutableRawBufferPointer
    var indices: [UInt64]
    var zero: [Bool]
    var compressed: [[UInt8]?]
    var count = 0

    init(blocks: Int, blockSize: Int) {
        self.blockSize = blockSize
        storage = .allocate(byteCount: blocks * blockSize, alignment: 4096)
        indices = Array(repeating: 0, count: blocks)
        zero = Array(repeating: false, count: blocks)
        compressed = Array(repeating: nil, count: blocks)
    }

    deinit { storage.deallocate() }

    func mutableBlock(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[(slot * blockSize)..<((slot + 1) * blockSize)])
    }

    func block(_ slot: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(mutableBlock(slot)) }

    func reset() {
        count = 0
        for i in compressed.indices { compressed[i] = nil }
    }

    func compress(with deflaters: [Deflater]) {
        let workers = deflaters.count
        let n = count
        let pool = DeflaterPool(deflaters)
        let next = SlotCounter()
        compressed.withUnsafeMutableBufferPointer { results in
            let out = UnsafeSendable(results)
            let zero = UnsafeSendable(self.zero)
            // Workers take the next block as they finish one, so a descheduled worker on a busy machine
            // does not hold the others back until the end of the batch.
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let deflater = pool.items[worker]
                while true {
                    let slot = next.take()
                    if slot >= n { break }
                    if !zero.value[slot] { out.value[slot] = deflater.compress(self.block(slot)) }
                }
            }
        }
    }
}

/// Hands out slot numbers 0, 1, 2, ... to workers.
private final class SlotCounter: Sendable {
    private let next = Atomic<Int>(0)

    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// Deflaters handed one per worker; each worker uses only its own.
private final class DeflaterPool: @unchecked Sendable {
    // @unchecked: worker i uses only items[i].
    let items: [Deflater]
    init(_ items: [Deflater]) { self.items = items }
}

/// A buffer pointer handed to workers that write disjoint slots.
private struct UnsafeSendable<T>: @unchecked Sendable {
    // @unchecked: callers write disjoint elements only.
    let value: T
    init(_ value: T) { self.value = value }
}
