import Ext4
import Ext4Archive
import Foundation
import KilnArchive
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A file system the host wrote before the guest started (`BaseFileSystems`), as the guest left it,
/// from what changed: the guest sends every path the file system holds (NUL-separated,
/// `find -print0`) and a tar of only the entries whose change time is past the base's (`find
/// -newerct`; every write, chmod, chown, rename or link changes an inode's change time), sorted as
/// below. From a cached base that time is `SOURCE_DATE_EPOCH`: the host wrote every time at or
/// before it, and the guest's clock is past it before anything is touched. On a lockfile's first
/// build it is when the guest finished saving the configured base, whose tar is then the base.
/// The final file system takes each listed path from that tar when it is there, else from the base
/// tar; a base entry that is not listed was deleted.
///
/// Under TCG the guest then reads back only what it wrote, not the whole tree. The entries reach
/// the writer in the order GNU tar's `--sort=name` gives a whole tree (depth first, names compared
/// bytewise), so the file system is the same as one written from a full tar of the same tree.
struct ChangedTree {
    /// Where the file system is mounted, relative to `/` without slashes at the ends ("" for `/`).
    var mountPath: String
    /// Every path in the guest's file system, relative to its root ("" is the root).
    var paths: [String]

    /// Parses `find . -print0` output: "./usr/bin" becomes "usr/bin", "." the root.
    init(mountPath: String, list: [UInt8]) {
        self.mountPath = mountPath
        var paths: [String] = []
        for name in list.split(separator: 0) {
            paths.append(ArchiveEntry.normalize(String(decoding: name, as: UTF8.self)))
        }
        self.paths = paths.sorted(by: Self.precedes)
    }

    /// Every path the file system holds, in any order.
    init(mountPath: String, paths: [String]) {
        self.mountPath = mountPath
        self.paths = paths.sorted(by: Self.precedes)
    }

    /// GNU tar's `--sort=name` order: a directory before what it holds, siblings by their names'
    /// bytes. Comparing the paths' bytes with "/" below every other byte gives exactly that.
    static func precedes(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case (let x?, let y?):
                if x == y { continue }
                if x == 0x2F { return true }
                if y == 0x2F { return false }
                return x < y
            }
        }
    }

    /// The base entry's path inside this file system, or nil when it lives on another.
    func local(_ path: String) -> String? {
        if mountPath.isEmpty { return path }
        if path == mountPath { return "" }
        guard path.hasPrefix(mountPath + "/") else { return nil }
        return String(path.dropFirst(mountPath.count + 1))
    }

    /// Feeds `writer` every listed path, from `changes` (the guest's tar) or from `base`.
    func write(base: ArchiveReader, changes: ArchiveReader, into writer: Ext4Writer) throws {
        var changed = try changes.next()
        var kept = try nextLocal(base)
        for path in paths {
            while let entry = changed, Self.precedes(entry.path, path) { changed = try changes.next() }
            if let entry = changed, entry.path == path {
                try add(entry, path: path, from: changes, to: writer)
                changed = try changes.next()
                continue
            }
            while let entry = kept, Self.precedes(entry.path, path) { kept = try nextLocal(base) }
            guard let entry = kept, entry.path == path else {
                // The writer makes lost+found itself; the base never holds it.
                if path == "lost+found" { continue }
                throw BuilderError(
                    "\(path.isEmpty ? "/" : path) is in the guest's tree but neither in the base nor among its changes")
            }
            try add(entry, path: path, from: base, to: writer)
            kept = try nextLocal(base)
        }
    }

    /// The base's next entry on this file system, its path (and a hard link's target) made local.
    private func nextLocal(_ base: ArchiveReader) throws -> ArchiveEntry? {
        while var entry = try base.next() {
            guard let path = local(entry.path) else { continue }
            entry.path = path
            if case .hardlink(let target) = entry.kind {
                guard let inside = local(target) else {
                    throw BuilderError("\(entry.path): a hard link to \(target) on another file system")
                }
                entry.kind = .hardlink(target: inside)
            }
            return entry
        }
        return nil
    }

    private func add(_ header: ArchiveEntry, path: String, from reader: ArchiveReader, to writer: Ext4Writer) throws {
        var entry = Ext4Entry(header)
        entry.path = path
        if case .file = header.kind {
            var contents = ArchiveContents(reader: reader)
            try writer.add(entry, contents: &contents)
        } else {
            try writer.add(entry)
        }
    }
}
