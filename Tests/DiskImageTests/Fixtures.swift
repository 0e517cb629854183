import Foundation
import KilnSupport
import Testing

@testable import DiskImage

/// Test images and the qemu-img judge.
enum Fixture {
    static let qemuImg: String? = ["/usr/bin/qemu-img", "/usr/local/bin/qemu-img"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static var hasQemuImg: Bool { qemuImg != nil }

    /// A fresh directory, removed by the caller with `cleanup`.
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "kiln-disk-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func cleanup(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// A sparse raw image of 67 MiB + 1.5 KiB (a multiple of no cluster or block size) holding random
    /// data at scattered offsets, partial clusters, a written run of zeros, and bytes at the very end.
    static func sampleRaw(in dir: String, name: String = "sample.raw") throws -> String {
        let path = "\(dir)/\(name)"
        let size: UInt64 = 67 * 1024 * 1024 + 1536
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
        var generator = SplitMix(seed: 0x6B696C6E)
        func put(_ offset: UInt64, _ count: Int, zero: Bool = false) throws {
            try handle.seek(toOffset: offset)
            let bytes =
                zero
                ? [UInt8](repeating: 0, count: count)
                : (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            try handle.write(contentsOf: Data(bytes))
        }
        try put(0, 512)  // a "boot sector"
        try put(1000, 100)  // a partial cluster
        try put(3 << 20, 3 << 20)  // 3 MiB of data spanning blocks
        try put(9 << 20, 1 << 20, zero: true)  // allocated zeros: must stay unallocated in outputs
        try put((17 << 20) + 65000, 1200)  // crosses a 64 KiB cluster boundary
        try put(33 << 20, 200_000)
        try put(size - 777, 777)  // up to the last byte
        // Compressible text, so compressed outputs have something to compress.
        let text = Data(String(repeating: "kiln writes every disk format itself. ", count: 40_000).utf8)
        try handle.seek(toOffset: 40 << 20)
        try handle.write(contentsOf: text)
        return path
    }

    /// Runs qemu-img and returns its exit status and output.
    @discardableResult
    static func qemuImg(_ arguments: [String]) async throws -> (Int32, String) {
        let (ended, text) = try await Subprocess.output([qemuImg ?? "qemu-img"] + arguments)
        if case .exited(let code) = ended { return (code, text) }
        return (-1, text)
    }

    /// `qemu-img info --output=json` as a dictionary.
    static func info(_ path: String, format: String) async throws -> [String: Any] {
        let (code, text) = try await qemuImg(["info", "-f", format, "--output=json", path])
        #expect(code == 0, "qemu-img info failed: \(text)")
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// Every byte of `reader` against the raw file at `path`.
    static func sameContent(_ reader: any DiskReader, raw path: String) throws -> Bool {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let chunk = 4 << 20
        var offset = 0
        while offset < data.count {
            let n = min(chunk, data.count - offset)
            let got = try reader.read(count: n, at: UInt64(offset))
            if got != [UInt8](data[offset..<(offset + n)]) { return false }
            offset += n
        }
        // Whatever lies past the source (rounding up to sectors or MiB) must read as zero.
        if reader.virtualSize > UInt64(data.count) {
            let tail = try reader.read(count: Int(reader.virtualSize - UInt64(data.count)), at: UInt64(data.count))
            if tail.contains(where: { $0 != 0 }) { return false }
        }
        return true
    }
}

/// A small deterministic generator so that fixtures are the same on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
