/// Hands out data blocks in increasing order, stepping over metadata: nothing is ever freed, so a
/// block is in use exactly when it is metadata or lies below `next`.
struct Ext4BlockAllocator {
    let metadata: [Range<Int64>]
    let end: Int64
    private(set) var next: Int64 = 0
    private var range = 0

    init(metadata: [Range<Int64>], end: Int64) {
        self.metadata = metadata
        self.end = end
    }

    mutating func allocate() throws(Ext4Error) -> Int64 {
        while range < metadata.count, next >= metadata[range].lowerBound {
            next = max(next, metadata[range].upperBound)
            range += 1
        }
        guard next < end else { throw Ext4Error(.noSpace, "the file system is full (\(end) blocks)") }
        defer { next += 1 }
        return next
    }

    /// Appends `block` to `extents` at file block `logical`, growing the last extent where it
    /// continues it on disk and in the file.
    static func append(_ block: Int64, logical: UInt32, to extents: inout [Ext4Extent]) {
        if let last = extents.last, last.length < Ext4Extent.maximumLength,
            Int64(last.logical) + Int64(last.length) == Int64(logical), last.physical + Int64(last.length) == block
        {
            extents[extents.count - 1].length += 1
        } else {
            extents.append(Ext4Extent(logical: logical, physical: block, length: 1))
        }
    }
}
