import ArgumentParser
import Foundation
import KilnSupport
import Packages

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List, prune or clean kiln's cache ($KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).",
        discussion: """
            The cache holds downloaded packages and indexes (debs, indexes: content-addressed), builder \
            guests (builder), configured bases and initramfs images (base), builder guest runs kept for \
            builds without QEMU (changes), unpacked boot files (netboot) \
            and what kiln learned about KVM (kvm). Do not prune or clean while a build runs.
            """,
        subcommands: [List.self, Prune.self, Clean.self],
        defaultSubcommand: List.self
    )

    /// The areas whose entries are keyed (`KEY` or `KEY.suffix`); an entry's age is its newest write.
    static let keyedAreas = ["builder", "base", "changes", "netboot"]

    static var root: String { KilnCache.root() }

    struct Entry {
        var area: String
        var key: String
        var paths: [String]
        var bytes: UInt64
        var modified: Date
    }

    /// Every entry of the keyed areas; in the others (debs, indexes, kvm), one entry per area.
    static func entries(root: String) -> [Entry] {
        let files = FileManager.default
        var result: [Entry] = []
        let areas = ((try? files.contentsOfDirectory(atPath: root)) ?? []).sorted()
        for area in areas {
            let dir = "\(root)/\(area)"
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            guard keyedAreas.contains(area) else {
                result.append(
                    Entry(area: area, key: "", paths: [dir], bytes: size(of: dir), modified: modified(dir)))
                continue
            }
            var groups: [String: [String]] = [:]
            for name in (try? files.contentsOfDirectory(atPath: dir)) ?? [] where !name.hasPrefix(".") {
                let key = String(name.split(separator: ".", maxSplits: 1).first ?? Substring(name))
                groups[key, default: []].append("\(dir)/\(name)")
            }
            for (key, paths) in groups {
                result.append(
                    Entry(
                        area: area, key: key, paths: paths.sorted(),
                        bytes: paths.reduce(0) { $0 + size(of: $1) },
                        modified: paths.map(modified).max() ?? .distantPast))
            }
        }
        return result.sorted { ($0.area, $1.modified) < ($1.area, $0.modified) }
    }

    /// Bytes allocated on disk under `path`.
    static func size(of path: String) -> UInt64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        var total = UInt64(max(0, info.st_blocks)) * 512
        if (info.st_mode & S_IFMT) == S_IFDIR, let enumerator = FileManager.default.enumerator(atPath: path) {
            for case let name as String in enumerator {
                var child = stat()
                if lstat("\(path)/\(name)", &child) == 0 { total += UInt64(max(0, child.st_blocks)) * 512 }
            }
        }
        return total
    }

    static func modified(_ path: String) -> Date {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "What the cache holds, with sizes, newest first in each area.")

        @OptionGroup var progress: ProgressOptions

        func run() async throws {
            let root = CacheCommand.root
            let entries = CacheCommand.entries(root: root)
            let total = entries.reduce(UInt64(0)) { $0 + $1.bytes }
            if progress.json {
                let formatter = ISO8601DateFormatter()
                progress.console().result(
                    Listing(
                        root: root, bytes: total,
                        entries: entries.map {
                            .init(
                                area: $0.area, key: $0.key, bytes: $0.bytes,
                                modified: formatter.string(from: $0.modified))
                        }))
                return
            }
            print("\(root): \(ConvertCommand.size(total))")
            let formatter = ISO8601DateFormatter()
            for entry in entries {
                let name = entry.key.isEmpty ? entry.area : "\(entry.area)/\(entry.key.prefix(16))"
                let padded = name.padding(toLength: max(name.count, 30), withPad: " ", startingAt: 0)
                print("  \(padded) \(ConvertCommand.size(entry.bytes))  \(formatter.string(from: entry.modified))")
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Keep the N newest builder guests, bases, kept guest runs and boot file trees; remove the rest.")

        @Option(help: "How many entries to keep in each of builder, base, changes and netboot.")
        var keep = 2

        @OptionGroup var progress: ProgressOptions

        func validate() throws {
            guard keep >= 0 else { throw ValidationError("--keep must be 0 or more") }
        }

        func run() async throws {
            var freed: UInt64 = 0
            var removed = 0
            let entries = CacheCommand.entries(root: CacheCommand.root)
            for area in CacheCommand.keyedAreas {
                for entry in entries.filter({ $0.area == area }).dropFirst(keep) {
                    for path in entry.paths { try? FileManager.default.removeItem(atPath: path) }
                    freed += entry.bytes
                    removed += 1
                }
            }
            Console.standardError.write("kiln: removed \(removed) cache entries, \(ConvertCommand.size(freed)) freed")
            progress.console().result(Removal(root: CacheCommand.root, removed: removed, bytesFreed: freed))
        }
    }

    struct Clean: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clean", abstract: "Remove everything in the cache; the next build downloads again.")

        @OptionGroup var progress: ProgressOptions

        func run() async throws {
            let root = CacheCommand.root
            let entries = CacheCommand.entries(root: root)
            let freed = entries.reduce(UInt64(0)) { $0 + $1.bytes }
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                try? FileManager.default.removeItem(atPath: "\(root)/\(name)")
            }
            Console.standardError.write("kiln: removed \(root)'s contents, \(ConvertCommand.size(freed)) freed")
            progress.console().result(Removal(root: root, removed: entries.count, bytesFreed: freed))
        }
    }

    /// `kiln cache list --json`'s result: every entry, and their total.
    struct Listing: Encodable {
        struct Entry: Encodable {
            let area: String
            let key: String
            let bytes: UInt64
            /// ISO 8601, UTC.
            let modified: String
        }

        let root: String
        let bytes: UInt64
        let entries: [Entry]
    }

    /// `kiln cache prune/clean --json`'s result: how many entries went, and the space they held.
    struct Removal: Encodable {
        let root: String
        let removed: Int
        let bytesFreed: UInt64

        enum CodingKeys: String, CodingKey {
            case root, removed
            case bytesFreed = "bytes_freed"
        }
    }
}
