import Foundation
import KilnSupport

/// Writes an ext4 file system into a region of a disk file from a stream of entries, as
/// `mke2fs -t ext4 -d` would from a tree, with Debian 12's ext4 features, 4 KiB blocks, 256-byte
/// inodes, an internal journal and metadata_csum.
///
/// File data goes to disk as it arrives (all-zero blocks become holes, as `mke2fs -d` makes them);
/// inodes and directories are kept until `finish()`, which writes them with the bitmaps, group
/// descriptors and superblocks. The same entries in the same order give the same bytes; feeding
/// them sorted by path gives the same layout whatever produced them. The region holds no file system
/// until `finish()` returns: it is cleared first and its superblock is written last, so after an
/// error (which leaves the writer unusable) no half-written file system can be mounted.
package final class Ext4Writer {
    package struct Options: Sendable {
        /// The file system's UUID (`mke2fs -U`).
        package var uuid: UUID
        /// The seed of hashed directory names (`mke2fs -E hash_seed=`).
        package var hashSeed: UUID
        /// Every time is clamped to this (seconds); the superblock's times are this.
        package var sourceDateEpoch: Int64
        /// The volume label, at most 16 bytes (`mke2fs -L`).
        package var label: String
        /// Bytes of space per inode (`mke2fs -i`).
        package var bytesPerInode: Int
        /// Percent of blocks reserved for root (`mke2fs -m`).
        package var reservedPercent: Int
        /// The journal's size in blocks; nil for mke2fs's default for the size.
        package var journalBlocks: Int?

        package init(
            uuid: UUID, hashSeed: UUID? = nil, sourceDateEpoch: Int64, label: String = "", bytesPerInode: Int = 16384,
            reservedPercent: Int = 5, journalBlocks: Int? = nil
        ) {
            self.uuid = uuid
            self.hashSeed = hashSeed ?? uuid
            self.sourceDateEpoch = sourceDateEpoch
            self.label = label
            self.bytesPerInode = bytesPerInode
            self.reservedPercent = reservedPercent
            self.journalBlocks = journalBlocks
        }
    }

    /// What `finish()` made.
    package struct Summary: Sendable, Equatable {
        package var blocks: Int64
        package var freeBlocks: Int64
        package var inodes: Int
        package var freeInodes: Int
    }

    static let rootInode: UInt32 = 2
    static let journalInode: UInt32 = 8
    static let lostAndFoundInode: UInt32 = 11
    static let firstInode: UInt32 = 11

    let options: Options
    let geometry: Ext4Geometry
    let device: Ext4Device
    /// `s_csum_seed`: CRC-32C of the UUID, the start of every metadata checksum.
    let checksumSeed: UInt32
    var allocator: Ext4BlockAllocator
    /// Inode n is `inodes[n - 1]`; 1 to 10 are the reserved ones.
    var inodes: [Ext4Inode] = []
    /// A directory's entries (not "." and ".."), by its inode number.
    var children: [UInt32: [Ext4DirectoryEntry]] = [:]
    var parents: [UInt32: UInt32] = [:]
    var paths: [String: UInt32] = ["": Ext4Writer.rootInode]
    private var state = State.open
    let data: Ext4DataWriter

    enum State {
        case open, failed, finished
    }

    /// Clears the region and prepares an empty file system in it: root, lost+found and the journal.
    /// - Parameters:
    ///   - path: a disk image (made, or grown to hold the region, when it is shorter) or a block device.
    ///   - offset: where the file system starts, in bytes.
    ///   - size: its size in bytes (a partial last block is left out).
    package init(path: String, offset: Int64 = 0, size: Int64, options: Options) throws(Ext4Error) {
        guard options.label.utf8.count <= 16 else {
            throw Ext4Error(.invalidGeometry, "label \(options.label) is longer than 16 bytes")
        }
        guard (0...50).contains(options.reservedPercent) else {
            throw Ext4Error(.invalidGeometry, "\(options.reservedPercent)% reserved blocks is out of range")
        }
        self.options = options
        geometry = try Ext4Geometry(
            bytes: size, bytesPerInode: options.bytesPerInode, journalBlocks: options.journalBlocks)
        guard geometry.journalBlocks >= 1024, geometry.journalBlocks * 2 < geometry.blockCount else {
            throw Ext4Error(.invalidGeometry, "a journal of \(geometry.journalBlocks) blocks does not fit")
        }
        device = try Ext4Device(path: path, start: offset, length: geometry.blockCount * Int64(Ext4Geometry.blockSize))
        checksumSeed = CRC32C.update(~0, Self.bytes(of: options.uuid))
        allocator = Ext4BlockAllocator(metadata: geometry.metadata, end: geometry.blockCount)
        data = Ext4DataWriter(device: device)
        try device.zeroAll()

        let epoch = options.sourceDateEpoch
        inodes = (1...10).map { _ in Ext4Inode(mode: 0, time: 0, links: 0) }
        var root = Ext4Inode(mode: Ext4Inode.directory | 0o755, time: epoch, links: 2)
        root.flags = Ext4Inode.extentsFlag
        inodes[Int(Self.rootInode) - 1] = root
        try makeJournal()
        var lostAndFound = Ext4Inode(mode: Ext4Inode.directory | 0o700, time: epoch, links: 2)
        lostAndFound.flags = Ext4Inode.extentsFlag
        inodes.append(lostAndFound)
        children[Self.rootInode] = []
        children[Self.lostAndFoundInode] = []
        parents[Self.rootInode] = Self.rootInode
        link("lost+found", Self.lostAndFoundInode, into: Self.rootInode)
        inodes[Int(Self.rootInode) - 1].links += 1
        paths["lost+found"] = Self.lostAndFoundInode
    }

    /// Adds anything but a regular file with data: a directory, link, device, FIFO, socket, or an
    /// empty regular file. A directory that exists already (the root, lost+found, a parent made for an
    /// earlier entry) takes this entry's owner, mode, time and attributes.
    package func add(_ entry: Ext4Entry) throws(Ext4Error) {
        var none = Ext4NoContents()
        try add(entry, contents: &none)
    }

    /// Adds an entry; a regular file's bytes are read from `contents` and written straight to disk.
    package func add(_ entry: Ext4Entry, contents: inout some Ext4Contents) throws(Ext4Error) {
        guard state == .open else {
            throw Ext4Error(.unusable, "\(device.path): the writer has \(state == .failed ? "failed" : "finished")")
        }
        do {
            try insert(entry, contents: &contents)
        } catch {
            state = .failed
            throw error
        }
    }

    /// Writes directories, extent trees, attribute blocks, inode tables, bitmaps, group descriptors
    /// and superblocks; after it the region holds a clean file system.
    package func finish() throws(Ext4Error) -> Summary {
        guard state == .open else {
            throw Ext4Error(.unusable, "\(device.path): the writer has \(state == .failed ? "failed" : "finished")")
        }
        do {
            let summary = try writeMetadata()
            state = .finished
            return summary
        } catch {
            state = .failed
            throw error
        }
    }

    /// What `add(_:)` passes for a file: reading it means the caller forgot the file's bytes.
    struct Ext4NoContents: Ext4Contents {
        func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {}
    }

    static func bytes(of uuid: UUID) -> [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    var epoch: Int64 { options.sourceDateEpoch }
}
