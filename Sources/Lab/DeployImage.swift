import Crypto
import DiskImage
import Foundation
import KilnSupport
import NetBoot
import Synchronization

/// What the deploy agent is told about an image: its size, its partition to grow and its root, and
/// the pieces that hold data, each with its SHA-256. The zeros between the pieces never travel; the
/// agent zeroes those ranges on the disk instead (`zero` lines), which costs no transfer.
package struct DeployPlan: Sendable, Codable, Equatable {
    package struct Chunk: Sendable, Codable, Equatable {
        package var offset: UInt64
        package var length: Int
        package var sha256: String
    }

    /// The image file's SHA-256, checked against `manifest.json` when one names the file.
    package var fileSHA256: String
    /// The image's guest bytes as a raw (sparse) file: the image itself when it is raw, else a copy
    /// converted once into the lab's state folder. Chunks are served from it.
    package var rawPath: String
    /// Whether `fileSHA256` was checked against a manifest (else kiln only computed it).
    package var checkedAgainstManifest: Bool
    package var virtualSize: UInt64
    package var table: String?
    /// The last partition, grown to fill the disk when its file system is one the agent can grow.
    package var grow: PartitionRef?
    /// The root file system, where the host name goes.
    package var root: PartitionRef?
    package var chunks: [Chunk]
    /// Ranges inside the image that hold no data: the agent zeroes them on the disk.
    package var zeros: [Range<UInt64>]

    package struct PartitionRef: Sendable, Codable, Equatable {
        package var number: Int
        package var fileSystem: String
    }

    /// Bytes that travel.
    package var dataBytes: Int64 { chunks.reduce(0) { $0 + Int64($1.length) } }

    /// The text the agent reads (see `DeployAgentScripts`).
    func text(name: String, disk: String?, after: String) -> String {
        var lines = ["kiln-deploy 1", "name \(name)", "size \(virtualSize)", "bytes \(dataBytes)", "after \(after)"]
        if let table { lines.append("table \(table)") }
        if let disk { lines.append("disk \(disk)") }
        if let grow { lines.append("grow \(grow.number) \(grow.fileSystem)") }
        if let root { lines.append("root \(root.number) \(root.fileSystem)") }
        for range in zeros { lines.append("zero \(range.lowerBound) \(range.count)") }
        for (index, chunk) in chunks.enumerated() {
            lines.append("chunk \(index) \(chunk.offset) \(chunk.length) \(chunk.sha256)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The images lab hosts are deployed with: each one's plan, made once per version of the file (and
/// kept in `<state>/images/`, so that a restart does not read the image again), and its chunks read
/// on demand through kiln's own readers, whatever the format.
package final class DeployImages: Sendable {
    /// Chunks are whole MiBs (the agent writes them with 1 MiB blocks), at most this many bytes.
    static let chunkSize = 8 << 20
    static let alignment: UInt64 = 1 << 20

    private let directory: String
    private let plans: Mutex<[String: Task<DeployPlan, any Error>]>

    package init(stateDirectory: String) {
        directory = stateDirectory + "/images"
        plans = Mutex([:])
    }

    /// The plan for the image at `path`, made on the first call for this version of the file.
    /// - Throws: `NetBootError(.refused)` when the image does not match its manifest or cannot be read.
    package func plan(for path: String) async throws -> DeployPlan {
        let key = try Self.key(path)
        let task = plans.withLock { tasks in
            if let task = tasks[key] { return task }
            let directory = directory
            let task = Task<DeployPlan, any Error>.detached(priority: .medium) {
                try Self.makeOrLoadPlan(path: path, key: key, directory: directory)
            }
            tasks[key] = task
            return task
        }
        return try await task.value
    }

    /// Where one chunk of the plan for `path` lies: a range of its raw view.
    package func chunk(_ index: Int, of path: String) async throws -> DiskRange {
        let plan = try await plan(for: path)
        guard plan.chunks.indices.contains(index) else {
            throw NetBootError(.notFound, "no chunk \(index) in the plan for \(path)")
        }
        let chunk = plan.chunks[index]
        let start = Int(chunk.offset)
        return DiskRange(path: plan.rawPath, range: start..<(start + chunk.length))
    }

    /// Names a version of the file: its path, size, modification time and inode.
    static func key(_ path: String) throws -> String {
        guard let stamp = FileStamp(path) else { throw NetBootError(.notFound, "image \(path) does not exist") }
        let text = "\(path)\n\(stamp.size)\n\(stamp.seconds).\(stamp.nanoseconds)\n\(stamp.inode)"
        return SHA256.hash(data: Data(text.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    static func makeOrLoadPlan(path: String, key: String, directory: String) throws -> DeployPlan {
        let cached = "\(directory)/\(key).plan.json"
        if let data = FileManager.default.contents(atPath: cached),
            let plan = try? JSONDecoder().decode(DeployPlan.self, from: data),
            FileManager.default.fileExists(atPath: plan.rawPath)
        {
            return plan
        }
        let plan = try makePlan(path: path, rawCopy: "\(directory)/\(key).raw")
        if let data = try? JSONEncoder().encode(plan) {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? AtomicOutput.write(data, to: cached)
        }
        return plan
    }

    /// Reads the whole image once: its file's SHA-256 (against the manifest beside it), its partitions,
    /// and a SHA-256 for each chunk of data.
    static func makePlan(path: String, rawCopy: String) throws -> DeployPlan {
        let fileDigest = try sha256(ofFile: path)
        let expected = try manifestDigest(for: path)
        if let expected, expected != fileDigest {
            throw NetBootError(
                .refused,
                "\((path as NSString).lastPathComponent): SHA-256 \(fileDigest) does not match manifest.json's \(expected)"
            )
        }
        var rawPath = path
        do {
            if try DiskImage.detectFormat(path) != .raw {
                try FileManager.default.createDirectory(
                    atPath: (rawCopy as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try ImageConverter.convert(
                    DiskImage.open(path), to: rawCopy, options: ExportOptions(format: .raw))
                rawPath = rawCopy
            }
        } catch {
            throw NetBootError(.refused, "\(path): \(error)")
        }
        do {
            return try layout(
                of: DiskImage.open(rawPath), fileSHA256: fileDigest, rawPath: rawPath, checked: expected != nil)
        } catch {
            throw NetBootError(.refused, "\(path): \(error)")
        }
    }

    /// The plan's pieces, read through `reader`.
    static func layout(of reader: any DiskReader, fileSHA256 fileDigest: String, rawPath: String, checked: Bool)
        throws(DiskImageError) -> DeployPlan
    {
        let table = try PartitionTable.read(from: reader)
        var chunks: [DeployPlan.Chunk] = []
        var zeros: [Range<UInt64>] = []
        var covered: UInt64 = 0
        let size = reader.virtualSize
        for range in try reader.dataRanges() {
            let start = range.lowerBound / alignment * alignment
            let end = min(size, (range.upperBound + alignment - 1) / alignment * alignment)
            var offset = max(start, covered)
            if offset > covered { zeros.append(covered..<offset) }
            while offset < end {
                let length = Int(min(UInt64(chunkSize), end - offset))
                let bytes = try reader.read(count: length, at: offset)
                if bytes.allSatisfy({ $0 == 0 }) {
                    if let last = zeros.last, last.upperBound == offset {
                        zeros[zeros.count - 1] = last.lowerBound..<(offset + UInt64(length))
                    } else {
                        zeros.append(offset..<(offset + UInt64(length)))
                    }
                } else {
                    let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
                    chunks.append(DeployPlan.Chunk(offset: offset, length: length, sha256: digest))
                }
                offset += UInt64(length)
            }
            covered = max(covered, end)
        }
        if covered < size { zeros.append(covered..<size) }
        var plan = DeployPlan(
            fileSHA256: fileDigest, rawPath: rawPath, checkedAgainstManifest: checked, virtualSize: size,
            table: table?.scheme.rawValue, grow: nil, root: nil, chunks: chunks, zeros: zeros)
        if let table { (plan.grow, plan.root) = try roles(in: table, reader: reader) }
        return plan
    }

    /// The partition to grow (the last one, when the agent can grow its file system) and the root file
    /// system (GPT's root type for x86-64 or arm64, else the largest Linux file system).
    static func roles(in table: PartitionTable, reader: any DiskReader) throws(DiskImageError) -> (
        grow: DeployPlan.PartitionRef?, root: DeployPlan.PartitionRef?
    ) {
        let rootTypes: Set<String> = ["4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"]
        var systems: [(PartitionEntry, String)] = []
        for partition in table.partitions {
            if let system = try fileSystem(of: partition, reader: reader) { systems.append((partition, system)) }
        }
        let growable: Set<String> = ["ext4", "xfs", "btrfs"]
        var grow: DeployPlan.PartitionRef?
        if let last = table.partitions.max(by: { $0.start < $1.start }),
            let system = systems.first(where: { $0.0.number == last.number })?.1, growable.contains(system)
        {
            grow = DeployPlan.PartitionRef(number: last.number, fileSystem: system)
        }
        let linux = systems.filter { growable.contains($0.1) }
        let root =
            linux.first { rootTypes.contains($0.0.type.uppercased()) }
            ?? linux.max { $0.0.size < $1.0.size }
        return (grow, root.map { DeployPlan.PartitionRef(number: $0.0.number, fileSystem: $0.1) })
    }

    /// The file system a partition holds, from its superblock's magic: ext4 (for ext2/3/4), xfs,
    /// btrfs, vfat, swap, crypto_LUKS; nil for anything else.
    static func fileSystem(of partition: PartitionEntry, reader: any DiskReader) throws(DiskImageError) -> String? {
        guard partition.size >= 128 * 1024 else { return nil }
        let head = try reader.read(count: 128 * 1024, at: partition.start)
        func ascii(_ offset: Int, _ text: String) -> Bool {
            Array(head[offset..<(offset + text.utf8.count)]) == Array(text.utf8)
        }
        if head[1024 + 56] == 0x53 && head[1024 + 57] == 0xEF { return "ext4" }
        if ascii(0, "XFSB") { return "xfs" }
        if ascii(0x10040, "_BHRfS_M") { return "btrfs" }
        if ascii(0, "LUKS") && head[4] == 0xBA && head[5] == 0xBE { return "crypto_LUKS" }
        if ascii(4086, "SWAPSPACE2") { return "swap" }
        if head[510] == 0x55 && head[511] == 0xAA && (ascii(0x36, "FAT") || ascii(0x52, "FAT32")) { return "vfat" }
        return nil
    }

    /// The SHA-256 that `manifest.json` beside the image records for it, if any.
    static func manifestDigest(for path: String) throws -> String? {
        let manifest = (path as NSString).deletingLastPathComponent + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifest) else { return nil }
        // Only what a deploy checks is read; the rest of the manifest may change without it.
        struct Manifest: Decodable {
            struct Output: Decodable {
                let file: String
                let sha256: String?
            }
            let outputs: [Output]?
        }
        let outputs: [Manifest.Output]
        do {
            outputs = try JSONDecoder().decode(Manifest.self, from: data).outputs ?? []
        } catch {
            throw NetBootError(.refused, "\(manifest) is not a kiln manifest: \(error)")
        }
        let name = (path as NSString).lastPathComponent
        return outputs.first { $0.file == name }?.sha256
    }

    static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw NetBootError(.refused, "cannot read \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 4 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
