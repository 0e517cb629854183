import Ext4
import Ext4Archive
import Foundation
import KilnArchive
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A cached configured base, or on a lockfile's first build the unpacked packages' tar, laid out on
/// the host, straight into the target disk's partitions, before the builder guest starts: the guest
/// then mounts file systems that already hold every package, instead of making them and unpacking
/// the tar through the kernel under TCG.
///
/// Each entry of the base goes to the file system whose mount point holds it, with that prefix
/// taken off; a mount point's own entry is both the directory in its parent and the root of the file
/// system mounted on it, as the guest's tree showed it when the base was saved. The ESP is not in a
/// base. Only layouts whose every mounted file system but the ESP is a plain ext4 are written here;
/// others (xfs, btrfs, ext3, LUKS) keep the guest's path.
struct BaseFileSystems {
    struct Mount {
        /// 1-based, as the guest numbers partitions.
        var number: Int
        var slot: DiskLayout.Slot
        /// Relative to `/`, without slashes at either end: "" for `/`, `boot`, `var/lib`.
        var path: String
    }

    let layout: DiskLayout
    let mounts: [Mount]

    /// nil when some mounted file system is not one the host writes.
    init?(layout: DiskLayout) {
        var mounts: [Mount] = []
        for (index, slot) in layout.slots.enumerated() {
            guard let fs = slot.filesystem, fs != .swap, slot.role != "esp" else { continue }
            guard fs == .ext4, slot.encryptionID == nil else { return nil }
            let path = slot.role.split(separator: "/").joined(separator: "/")
            mounts.append(Mount(number: index + 1, slot: slot, path: path))
        }
        guard mounts.contains(where: { $0.path.isEmpty }) else { return nil }
        self.layout = layout
        // Deepest first, so that the first mount point holding a path is the one it lives on.
        self.mounts = mounts.sorted { $0.path.split(separator: "/").count > $1.path.split(separator: "/").count }
    }

    /// The partition numbers written.
    var numbers: [Int] { mounts.map(\.number).sorted() }

    /// The mount a path lives on, and the path inside that file system.
    func route(_ path: String) -> (Mount, String)? {
        for mount in mounts {
            if mount.path.isEmpty { return (mount, path) }
            if path.hasPrefix(mount.path + "/") { return (mount, String(path.dropFirst(mount.path.count + 1))) }
        }
        return nil
    }

    /// Of the whole tree's `paths`, those on `mount`'s file system, relative to its root: a mount
    /// point is its file system's root ("") and a directory of its parent's.
    func paths(on mount: Mount, of paths: [String]) -> [String] {
        paths.compactMap { path in
            if !mount.path.isEmpty && path == mount.path { return "" }
            guard let (found, inside) = route(path), found.number == mount.number else { return nil }
            return inside
        }
    }

    /// Writes the tar at `base` (a configured base or the unpacked packages) into `raw`'s ext4 partitions.
    func write(base: String, into raw: String, sourceDateEpoch: Int64) throws(BuilderError) -> [Ext4Writer.Summary] {
        var writers: [Int: Ext4Writer] = [:]
        for mount in mounts {
            writers[mount.number] = try ReproducibleFileSystems.ext4Writer(
                for: mount.slot, into: raw, sourceDateEpoch: sourceDateEpoch)
        }
        do {
            let reader = try ArchiveReader(path: base)
            while let header = try reader.next() {
                var entry = Ext4Entry(header)
                // A mount point's own entry: the root of the file system mounted there takes its
                // owner, mode and time (the guest saw that directory), and its parent gets the directory.
                if let mounted = mounts.first(where: { !$0.path.isEmpty && $0.path == entry.path }) {
                    var root = entry
                    root.path = ""
                    try writers[mounted.number]?.add(root)
                }
                guard let (mount, inside) = route(entry.path), let writer = writers[mount.number] else {
                    throw BuilderError("\(base): \(entry.path) is on no file system of this disk")
                }
                entry.path = inside
                if case .hardLink(let target) = entry.kind {
                    guard let (linked, targetInside) = route(target), linked.number == mount.number else {
                        throw BuilderError("\(base): \(header.path) links to \(target) on another file system")
                    }
                    entry.kind = .hardLink(target: targetInside)
                }
                if case .file = header.kind {
                    var contents = ArchiveContents(reader: reader)
                    try writer.add(entry, contents: &contents)
                } else {
                    try writer.add(entry)
                }
            }
            var summaries: [Ext4Writer.Summary] = []
            for mount in mounts { if let writer = writers[mount.number] { summaries.append(try writer.finish()) } }
            return summaries
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError("cannot write the configured base's file systems: \(error)")
        }
    }
}
