#if canImport(Glibc)
    import Glibc
#endif

/// The host's part in making the same inputs give the same disk bytes.
///
/// The guest installs onto the target disk with the kernel's ext4, whose block allocation, inode
/// generations, journal and times depend on timing. At the end it writes each ext file system anew
/// with `mke2fs -d` from the finished tree onto a second disk (same partition table): libext2fs
/// allocates in a fixed order, reads directories sorted, and takes its own times from
/// `E2FSPROGS_FAKE_TIME`. Here, natively, those file systems replace the target's partitions, their
/// inode times are clamped to SOURCE_DATE_EPOCH, and the ESP's entry times are set to it.
enum ReproducibleFileSystems {
    /// Moves the rewritten file systems from `fileSystemDisk` into `raw`, then normalises times.
    static func finish(
        raw: String, fileSystemDisk: String, layout: DiskLayout, sourceDateEpoch: Int64
    ) throws(BuilderError) {
        let target = open(raw, O_RDWR | O_CLOEXEC)
        guard target >= 0 else { throw BuilderError("cannot open \(raw): \(DiskRegion.errorText)") }
        defer { close(target) }
        let source = open(fileSystemDisk, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw BuilderError("cannot open \(fileSystemDisk): \(DiskRegion.errorText)") }
        defer { close(source) }

        for slot in layout.slots {
            let region = DiskRegion(
                descriptor: target, path: raw, start: slot.startMiB << 20, length: slot.sizeMiB << 20)
            // A LUKS container is left as the guest wrote it: its key and salts are random, and the
            // file system disk holds nothing for it.
            guard slot.encryptionID == nil else { continue }
            switch slot.filesystem {
            case .ext4?, .ext3?:
                try copySparse(from: source, path: fileSystemDisk, into: region)
                try Ext4Timestamps(region: region, epoch: sourceDateEpoch).apply()
            case .vfat?:
                try FATTimestamps(region: region, epoch: sourceDateEpoch).apply()
            default:
                break
            }
        }
        guard fsync(target) == 0 else { throw BuilderError("cannot write \(raw): \(DiskRegion.errorText)") }
    }

    private static let punchHole: Int32 = 0x02  // FALLOC_FL_PUNCH_HOLE (linux/falloc.h)
    private static let keepSize: Int32 = 0x01  // FALLOC_FL_KEEP_SIZE
    private static let seekData: Int32 = 3  // SEEK_DATA (unistd.h, _GNU_SOURCE)
    private static let seekHole: Int32 = 4  // SEEK_HOLE

    /// Replaces `region` with the same range of `source`: the range becomes a hole, then only the
    /// source's data blocks that are not all zero are written, so the raw file stays sparse.
    static func copySparse(from source: Int32, path: String, into region: DiskRegion) throws(BuilderError) {
        let start = off_t(region.start)
        let end = off_t(region.start + region.length)
        let punched = fallocate(region.descriptor, punchHole | keepSize, start, off_t(region.length))
        let block = 4096
        let chunk = 1 << 20
        let sourceRegion = DiskRegion(descriptor: source, path: path, start: 0, length: Int64(end))
        var position = start
        while position < end {
            var data = lseek(source, position, seekData)
            if data < 0 { data = errno == ENXIO ? end : position }  // ENXIO: only a hole follows
            data = min(data, end)
            var hole = data < end ? lseek(source, data, seekHole) : end
            if hole < 0 { hole = end }
            hole = min(hole, end)
            if !punched && data > position {
                try writeZeros(region, from: Int64(position) - region.start, to: Int64(min(data, end)) - region.start)
            }
            guard data < end else { break }
            var at = data
            while at < hole {
                let count = Int(min(off_t(chunk), hole - at))
                let bytes = try sourceRegion.read(Int64(at), count)
                var run: Range<Int>? = nil
                func flush() throws(BuilderError) {
                    guard let range = run else { return }
                    try region.write(Array(bytes[range]), at: Int64(at) - region.start + Int64(range.lowerBound))
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
                at += off_t(count)
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
