import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A sparse disk file for the tests of kiln's table and file-system writers, and what the real tools
/// (sfdisk, fsck.fat, blkid) make of it.
package struct SparseDisk {
    package let path: String

    /// Creates (or empties) `path` as a hole of `size` bytes, as `truncate -s` does.
    package init(_ path: String, size: UInt64) throws {
        self.path = path
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(size)) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    /// A disk file that exists.
    package init(_ path: String) { self.path = path }

    /// `count` bytes at `offset`.
    package func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return [UInt8](try handle.read(upToCount: count) ?? Data())
    }

    /// Writes `bytes` at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: bytes)
    }

    /// 512-byte sectors `sectors`.
    package func sectors(_ sectors: Range<UInt64>) throws -> [UInt8] {
        try read(Int(sectors.count) * 512, at: sectors.lowerBound * 512)
    }

    package var size: UInt64 {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
    }

    /// The byte ranges that hold data (SEEK_DATA/SEEK_HOLE): what was ever written, to the file
    /// system's block size.
    package var dataRanges: [Range<UInt64>] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var ranges: [Range<UInt64>] = []
        var position: off_t = 0
        while true {
            let data = lseek(fd, position, 3)  // SEEK_DATA (Glibc's overlay does not export it)
            if data < 0 { break }
            let hole = lseek(fd, data, 4)  // SEEK_HOLE
            ranges.append(UInt64(data)..<UInt64(hole))
            position = hole
        }
        return ranges
    }

    /// Whether every byte that holds data lies in `allowed`, widened to `block`-byte blocks.
    package func onlyWritten(_ allowed: [Range<UInt64>], block: UInt64 = 4096) -> Bool {
        var widened: [Range<UInt64>] = []
        for range in allowed.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let low = range.lowerBound / block * block
            let high = (range.upperBound + block - 1) / block * block
            if let last = widened.last, low <= last.upperBound {
                widened[widened.count - 1] = last.lowerBound..<max(high, last.upperBound)
            } else {
                widened.append(low..<high)
            }
        }
        return dataRanges.allSatisfy { range in
            widened.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }
        }
    }

    /// Runs `sfdisk --quiet` with `script` on its standard input; throws with sfdisk's output when it fails.
    package func sfdisk(script: String) async throws {
        let scriptPath = path + ".sfdisk"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        let (status, output) = try await Subprocess.output(
            ["/bin/sh", "-c", "sfdisk --quiet \"$0\" < \"$1\"", path, scriptPath])
        guard status == .exited(0) else { throw ToolFailure(command: "sfdisk \(path)", output: output) }
    }

    /// `sfdisk --dump`, the disk's path written as `DISK` so that two disks' dumps compare.
    package func sfdiskDump() async throws -> String {
        let (status, output) = try await Subprocess.output(["sfdisk", "--dump", path])
        guard status == .exited(0) else { throw ToolFailure(command: "sfdisk --dump \(path)", output: output) }
        return output.replacingOccurrences(of: path, with: "DISK")
    }

    /// `sfdisk --verify`: whether it found no error, and what it said.
    package func sfdiskVerify() async throws -> (clean: Bool, output: String) {
        let (status, output) = try await Subprocess.output(["sfdisk", "--verify", path])
        return (status == .exited(0) && output.contains("No errors detected"), output)
    }
}

/// A judge that failed, with what it printed.
package struct ToolFailure: Error, CustomStringConvertible {
    package var command: String
    package var output: String
    package var description: String { "\(command) failed: \(output)" }
}
