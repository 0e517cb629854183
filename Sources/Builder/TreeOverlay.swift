import Foundation
import KilnArchive
import KilnSupport

/// What kiln writes over a configured base on the host: the description's files (hostname, fstab,
/// network, `files:`, ...) laid over the base's tar into a new tar, in the base's order (GNU tar's
/// `--sort=name`, `ChangedTree.precedes`), before the file systems are written from it. The guest
/// then finds them in place, as if it had unpacked them itself.
///
/// An entry replaces the base's entry of the same path; a directory that the base has already keeps
/// the base's owner and mode. A removed path goes with everything under it. The directory holding
/// each file written or removed takes `SOURCE_DATE_EPOCH` as its time, as writing there would give
/// it (every time in the image is clamped to it).
struct TreeOverlay {
    enum Source {
        case none
        case bytes([UInt8])
        case hostFile(String)
    }

    private var entries: [String: (entry: ArchiveEntry, source: Source)] = [:]
    private var removed: Set<String> = []

    var isEmpty: Bool { entries.isEmpty && removed.isEmpty }

    /// Adds or replaces `entry` (a file's `size` must be its source's).
    mutating func add(_ entry: ArchiveEntry, source: Source = .none) {
        entries[entry.path] = (entry, source)
        removed.remove(entry.path)
    }

    /// Removes `path`, and whatever is under it, from the tree.
    mutating func remove(_ path: String) {
        entries[path] = nil
        removed.insert(path)
    }

    /// Adds every entry and removal of `other`, which win over this overlay's.
    mutating func add(_ other: TreeOverlay) {
        for path in other.removed { remove(path) }
        for (entry, source) in other.entries.values { add(entry, source: source) }
    }

    /// The entries of an archive (one `TargetConfiguration` wrote), their contents held in memory.
    mutating func add(archive path: String) throws(BuilderError) {
        do {
            for (entry, data) in try ArchiveReader.entries(of: path) {
                add(entry, source: entry.kind == .file ? .bytes(data) : .none)
            }
        } catch {
            throw BuilderError("cannot read \(path): \(error)")
        }
    }

    /// Writes `base` with this overlay laid over it to `output`, a pax tar.
    func write(over base: String, to output: String, sourceDateEpoch: Int64) throws(BuilderError) {
        let sorted = entries.values.sorted { ChangedTree.precedes($0.entry.path, $1.entry.path) }
        let files = entries.values.filter { $0.entry.kind != .directory }.map(\.entry.path)
        var stamped = Set((files + removed).map(Self.parent))
        var next = 0
        do {
            let reader = try ArchiveReader(path: base)
            let writer = try ArchiveWriter(path: output, format: .paxRestricted)
            func emit(_ item: (entry: ArchiveEntry, source: Source)) throws {
                var entry = item.entry
                if stamped.remove(entry.path) != nil { entry.modificationTime = sourceDateEpoch }
                switch item.source {
                case .none: try writer.add(entry)
                case .bytes(let bytes): try writer.addFile(entry, contents: bytes)
                case .hostFile(let path): try writer.addFile(entry, streamingFrom: path)
                }
            }
            // Below a removed path, or a directory replaced by something else: left out.
            var dropped: String?
            while var entry = try reader.next() {
                while next < sorted.count, ChangedTree.precedes(sorted[next].entry.path, entry.path) {
                    try emit(sorted[next])
                    next += 1
                }
                if let prefix = dropped, entry.path.hasPrefix(prefix + "/") {
                    try reader.skipData()
                    continue
                }
                dropped = nil
                if removed.contains(entry.path) {
                    dropped = entry.path
                    try reader.skipData()
                    continue
                }
                if next < sorted.count, sorted[next].entry.path == entry.path {
                    let replacement = sorted[next]
                    next += 1
                    try reader.skipData()
                    if entry.kind == .directory && replacement.entry.kind == .directory {
                        entry.modificationTime = replacement.entry.modificationTime
                        try emit((entry, .none))
                    } else {
                        if entry.kind == .directory { dropped = entry.path }
                        try emit(replacement)
                    }
                    continue
                }
                if stamped.remove(entry.path) != nil { entry.modificationTime = sourceDateEpoch }
                try writer.add(entry)
                if entry.kind == .file { try reader.readData { bytes throws(ArchiveError) in try writer.write(bytes) } }
            }
            while next < sorted.count {
                try emit(sorted[next])
                next += 1
            }
            try writer.finish()
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError("cannot lay the configuration over \(base): \(error)")
        }
    }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }
}
