import BuildVM
import Ext4
import Ext4Archive
import Foundation
import KilnArchive
import KilnSupport
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The host's part in making the same inputs give the same disk bytes.
///
/// The guest installs onto the target disk with the kernel's ext4, whose block allocation, inode
/// generations, journal and times depend on timing. At the end it sends each plain ext4 file
/// system's finished tree back as a tar (GNU tar, sorted by name, with owners, modes, holes and
/// extended attributes) on the partition of the same number of a second disk, and kiln writes the
/// file system anew from it here, natively, with `Ext4Writer`: same UUID, hash seed and label, times
/// clamped to SOURCE_DATE_EPOCH. An ext3 file system, or any when the builder has no tar (a lockfile
/// from before tar was a builder package), is rewritten in the guest by `mke2fs -d` instead (libext2fs
/// allocates in a fixed order and takes its times from `E2FSPROGS_FAKE_TIME`) and only moved here,
/// its inode times clamped. The ESP's entry times are set to SOURCE_DATE_EPOCH.
enum ReproducibleFileSystems {
    /// Writes or moves the rewritten file systems from `fileSystemDisk` into `raw`, then normalises
    /// times. `trees` holds the partition numbers (1-based) whose tree the guest sent as a tar.
    /// What the guest sent for one file system (`tree` events).
    enum Tree: Equatable {
        /// A tar of the whole tree at the partition's start.
        case whole
        /// A tar of what changed over the cached base at the partition's start, and the list of
        /// every path (`ChangedTree`) at `listOffset` bytes into the partition.
        case changes(listOffset: Int64, listSize: Int64)
    }

    /// `kiln-event tree "partition=N [list_offset=BYTES list_size=BYTES]"`: partition N's tree, whole
    /// or as changes with their path list, is on the same partition of the file system disk.
    struct TreeReport: GuestReport {
        static let event = "tree"
        let partition: Int
        let tree: Tree

        init(_ record: GuestRecord) throws(GuestRecordError) {
            partition = Int(try record.integer("partition"))
            if let offset = try record.optionalInteger("list_offset") {
                tree = .changes(listOffset: offset, listSize: try record.integer("list_size"))
            } else {
                tree = .whole
            }
        }
    }

    /// Writes or moves the rewritten file systems from `fileSystemDisk` into `raw`, then normalises
    /// times. `trees` holds the partitions (1-based) whose tree the guest sent as a tar; `base` is
    /// the cached base their changes apply to.
    static func finish(
        raw: String, fileSystemDisk: String, layout: DiskLayout, trees: [Int: Tree] = [:], base: String? = nil,
        sourceDateEpoch: Int64, progress: ProgressSink = .none
    ) throws(BuilderError) {
        let target: FileDescriptor
        do {
            target = try FileDescriptor.open(FilePath(raw), .readWrite, options: .closeOnExec)
        } catch {
            throw BuilderError("cannot open \(raw): \(error)")
        }
        defer { try? target.close() }
        let source: FileDescriptor
        do {
            source = try FileDescriptor.open(FilePath(fileSystemDisk), .readOnly, options: .closeOnExec)
        } catch {
            throw BuilderError("cannot open \(fileSystemDisk): \(error)")
        }
        defer { try? source.close() }

        for (index, slot) in layout.slots.enumerated() {
            let region = DiskRegion(
                descriptor: target, path: raw, start: slot.startMiB << 20, length: slot.sizeMiB << 20)
            // A LUKS container is left as the guest wrote it: its key and salts are random, and the
            // file system disk holds nothing for it.
            guard slot.encryptionID == nil else { continue }
            switch (slot.filesystem, trees[index + 1]) {
            case (.ext4?, let tree?):
                let started = ContinuousClock.now
                let name = "\(fileSystemDisk) partition \(index + 1)"
                let summary: Ext4Writer.Summary
                if case .changes(let listOffset, let listSize) = tree {
                    guard let base else { throw BuilderError("\(name) holds changes, but there is no base") }
                    summary = try writeExt4(
                        slot, into: raw, changesAt: slot.startMiB << 20, listAt: (slot.startMiB << 20) + listOffset,
                        listSize: listSize, of: source, name: name, base: base, sourceDateEpoch: sourceDateEpoch)
                } else {
                    summary = try writeExt4(
                        slot, into: raw, fromTarAt: slot.startMiB << 20, of: source, name: name,
                        sourceDateEpoch: sourceDateEpoch)
                }
                let used = (summary.blocks - summary.freeBlocks) * 4096 / 1_048_576
                let elapsed = started.duration(to: .now).components
                let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
                let from = tree == .whole ? "the guest's tree" : "the base and the guest's changes"
                progress(
                    .info(
                        "settle",
                        "wrote \(slot.role)'s ext4 from \(from): \(used) MiB, "
                            + "\(summary.inodes - summary.freeInodes) inodes, \(String(format: "%.1f", seconds)) s"))
            case (.ext4?, nil), (.ext3?, _):
                try copySparse(from: source, path: fileSystemDisk, into: region)
                try Ext4Timestamps(region: region, epoch: sourceDateEpoch).apply()
            case (.vfat?, _):
                try FATTimestamps(region: region, epoch: sourceDateEpoch).apply()
            default:
                break
            }
        }
        // swift-system has no fsync.
        guard fsync(target.rawValue) == 0 else { throw BuilderError("cannot write \(raw): \(Errno(rawValue: errno))") }
    }

    /// Writes `slot`'s file system from the cached `base` tar and the guest's changes over it: the
    /// changes' tar at byte `changesAt` of `source`, the list of the tree's paths at `listAt`.
    static func writeExt4(
        _ slot: DiskLayout.Slot, into raw: String, changesAt: Int64, listAt: Int64, listSize: Int64,
        of source: FileDescriptor,
        name: String, base: String, sourceDateEpoch: Int64
    ) throws(BuilderError) -> Ext4Writer.Summary {
        guard listSize >= 0, listSize < slot.sizeMiB << 20 else {
            throw BuilderError("\(name): a list of \(listSize) bytes")
        }
        var list = [UInt8](repeating: 0, count: Int(listSize))
        let read: Int
        do {
            read = try list.withUnsafeMutableBytes { try source.read(fromAbsoluteOffset: listAt, into: $0) }
        } catch {
            throw BuilderError("cannot read \(name)'s list of paths: \(error)")
        }
        guard read == Int(listSize) else { throw BuilderError("cannot read \(name)'s list of paths: end of file") }
        try seek(source, to: changesAt, name)
        let mountPath = slot.role.split(separator: "/").joined(separator: "/")
        let tree = ChangedTree(mountPath: mountPath, list: list)
        let writer = try ext4Writer(for: slot, into: raw, sourceDateEpoch: sourceDateEpoch)
        do {
            try tree.write(
                base: try ArchiveReader(path: base),
                changes: try ArchiveReader(descriptor: source.rawValue, name: name),
                into: writer)
            return try writer.finish()
        } catch {
            throw BuilderError(
                "cannot write \(slot.role)'s file system from the base and the guest's changes: \(error)")
        }
    }

    /// Writes `slot`'s file system into its partition of `raw` from the tar that starts at byte
    /// `offset` of `source`, with the UUID, hash seed and label `mke2fs` had in the guest.
    static func writeExt4(
        _ slot: DiskLayout.Slot, into raw: String, fromTarAt offset: Int64, of source: FileDescriptor, name: String,
        sourceDateEpoch: Int64
    ) throws(BuilderError) -> Ext4Writer.Summary {
        try seek(source, to: offset, name)
        let writer = try ext4Writer(for: slot, into: raw, sourceDateEpoch: sourceDateEpoch)
        do {
            try writer.addArchive(try ArchiveReader(descriptor: source.rawValue, name: name))
            return try writer.finish()
        } catch {
            throw BuilderError("cannot write \(slot.role)'s file system from the guest's tree: \(error)")
        }
    }

    /// Moves `source`'s offset to `offset`, where libarchive starts reading.
    private static func seek(_ source: FileDescriptor, to offset: Int64, _ name: String) throws(BuilderError) {
        do {
            try source.seek(offset: offset, from: .start)
        } catch {
            throw BuilderError("cannot read \(name): \(error)")
        }
    }

    /// A writer of `slot`'s ext4 into its partition of `raw`, with the UUID, hash seed and label
    /// `mke2fs` gets in the guest.
    static func ext4Writer(
        for slot: DiskLayout.Slot, into raw: String, sourceDateEpoch: Int64
    ) throws(BuilderError) -> Ext4Writer {
        guard let id = slot.filesystemID, let uuid = UUID(uuidString: id) else {
            throw BuilderError("partition \(slot.role) has no file system UUID")
        }
        let size = slot.sizeMiB << 20
        // mke2fs.conf's "small" type below 512 MiB: an inode per 4 KiB, so a small /boot or /var has
        // as many inodes as one mke2fs makes.
        let options = Ext4Writer.Options(
            uuid: uuid, hashSeed: uuid, sourceDateEpoch: sourceDateEpoch, label: slot.label,
            bytesPerInode: size < 512 << 20 ? 4096 : 16384)
        do {
            return try Ext4Writer(path: raw, offset: slot.startMiB << 20, size: size, options: options)
        } catch {
            throw BuilderError("cannot write \(slot.role)'s file system: \(error)")
        }
    }

    private static let punchHole: Int32 = 0x02  // FALLOC_FL_PUNCH_HOLE (linux/falloc.h)
    private static let keepSize: Int32 = 0x01  // FALLOC_FL_KEEP_SIZE
    // SEEK_DATA and SEEK_HOLE (unistd.h, _GNU_SOURCE), which swift-system names on Darwin and FreeBSD only.
    private static let seekData = FileDescriptor.SeekOrigin(rawValue: 3)
    private static let seekHole = FileDescriptor.SeekOrigin(rawValue: 4)

    /// Replaces `region` with the same range of `source`: the range becomes a hole, then only the
    /// source's data blocks that are not all zero are written, so the raw file stays sparse.
    static func copySparse(from source: FileDescriptor, path: String, into region: DiskRegion) throws(BuilderError) {
        let start = region.start
        let end = region.start + region.length
        let punched = fallocate(region.descriptor.rawValue, punchHole | keepSize, off_t(start), off_t(region.length))
        let block = 4096
        let chunk = 1 << 20
        let sourceRegion = DiskRegion(descriptor: source, path: path, start: 0, length: end)
        var position = start
        while position < end {
            var data: Int64
            do {
                data = try source.seek(offset: position, from: seekData)
            } catch Errno.noSuchAddressOrDevice {
                data = end  // only a hole follows
            } catch {
                data = position
            }
            data = min(data, end)
            var hole = data < end ? (try? source.seek(offset: data, from: seekHole)) ?? end : end
            hole = min(hole, end)
            if !punched && data > position {
                try writeZeros(region, from: position - region.start, to: min(data, end) - region.start)
            }
            guard data < end else { break }
            var at = data
            while at < hole {
                let count = Int(min(Int64(chunk), hole - at))
                let bytes = try sourceRegion.read(at, count)
                var run: Range<Int>? = nil
                func flush() throws(BuilderError) {
                    guard let range = run else { return }
                    try region.write(Array(bytes[range]), at: at - region.start + Int64(range.lowerBound))
                    run = nil
                }
                for offset in stride(from: 0, to: count, by: block) {
                    let upper = min(offset + block, count)
                    let zero = bytes[offset..<upper].allSatisfy { $0 == 0 }
                    if zero && punched {
                        try flush()
                    } else {
                        run = (run?.lowerBound ?? offset)..<upper
                    }
                }
                try flush()
                at += Int64(count)
            }
            position = hole
        }
    }

    /// fallocate(2), which Swift's Glibc module does not declare (it is behind _GNU_SOURCE); false
    /// where the file system cannot punch holes.
    private static func fallocate(_ descriptor: Int32, _ mode: Int32, _ offset: off_t, _ length: off_t) -> Bool {
        typealias Function = @convention(c) (Int32, Int32, off_t, off_t) -> Int32
        guard let symbol = dlsym(nil, "fallocate") else { return false }
        return unsafeBitCast(symbol, to: Function.self)(descriptor, mode, offset, length) == 0
    }

    /// Where holes cannot be punched, zeros stand for the source's holes.
    private static func writeZeros(_ region: DiskRegion, from: Int64, to: Int64) throws(BuilderError) {
        var at = from
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        while at < to {
            let count = Int(min(Int64(zeros.count), to - at))
            try region.write(count == zeros.count ? zeros : Array(zeros[0..<count]), at: at)
            at += Int64(count)
        }
    }
}
