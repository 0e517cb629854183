/// The qcow2 header (QEMU docs/interop/qcow2.txt, "Header"); every field is big-endian.
struct Qcow2Header: Equatable {
    static let magic: UInt32 = 0x5146_49FB  // "QFI\xfb"
    /// Version 3 header without the optional compression_type field.
    static let v3Length: UInt32 = 104

    var version: UInt32 = 3
    var backingFileOffset: UInt64 = 0
    var backingFileSize: UInt32 = 0
    var clusterBits: UInt32 = 16
    var size: UInt64
    var cryptMethod: UInt32 = 0
    var l1Size: UInt32
    var l1TableOffset: UInt64
    var refcountTableOffset: UInt64
    var refcountTableClusters: UInt32
    var nbSnapshots: UInt32 = 0
    var snapshotsOffset: UInt64 = 0
    var incompatibleFeatures: UInt64 = 0
    var compatibleFeatures: UInt64 = 0
    var autoclearFeatures: UInt64 = 0
    var refcountOrder: UInt32 = 4
    var headerLength: UInt32 = Qcow2Header.v3Length

    var clusterSize: Int { 1 << Int(clusterBits) }

    /// The header followed by the end-of-extensions marker (type 0, length 0).
    func encoded() -> Bytes {
        var b = Bytes(count: Int(Qcow2Header.v3Length) + 8)
        b.putBE(Qcow2Header.magic, at: 0)
        b.putBE(version, at: 4)
        b.putBE(backingFileOffset, at: 8)
        b.putBE(backingFileSize, at: 16)
        b.putBE(clusterBits, at: 20)
        b.putBE(size, at: 24)
        b.putBE(cryptMethod, at: 32)
        b.putBE(l1Size, at: 36)
        b.putBE(l1TableOffset, at: 40)
        b.putBE(refcountTableOffset, at: 48)
        b.putBE(refcountTableClusters, at: 56)
        b.putBE(nbSnapshots, at: 60)
        b.putBE(snapshotsOffset, at: 64)
        b.putBE(incompatibleFeatures, at: 72)
        b.putBE(compatibleFeatures, at: 80)
        b.putBE(autoclearFeatures, at: 88)
        b.putBE(refcountOrder, at: 96)
        b.putBE(headerLength, at: 100)
        return b
    }

    static func decode(_ b: Bytes, path: String) throws(DiskImageError) -> Qcow2Header {
        guard b.getBE(UInt32.self, at: 0) == magic else { throw DiskImageError(.corrupt, "\(path): no qcow2 magic") }
        let version = b.getBE(UInt32.self, at: 4)
        guard version == 2 || version == 3 else {
            throw DiskImageError(.unsupported, "\(path): qcow2 version \(version) is not supported (only 2 and 3)")
        }
        var h = Qcow2Header(
            size: b.getBE(UInt64.self, at: 24), l1Size: b.getBE(UInt32.self, at: 36),
            l1TableOffset: b.getBE(UInt64.self, at: 40), refcountTableOffset: b.getBE(UInt64.self, at: 48),
            refcountTableClusters: b.getBE(UInt32.self, at: 56))
        h.version = version
        h.backingFileOffset = b.getBE(UInt64.self, at: 8)
        h.backingFileSize = b.getBE(UInt32.self, at: 16)
        h.clusterBits = b.getBE(UInt32.self, at: 20)
        h.cryptMethod = b.getBE(UInt32.self, at: 32)
        h.nbSnapshots = b.getBE(UInt32.self, at: 60)
        h.snapshotsOffset = b.getBE(UInt64.self, at: 64)
        if version == 3 {
            h.incompatibleFeatures = b.getBE(UInt64.self, at: 72)
            h.compatibleFeatures = b.getBE(UInt64.self, at: 80)
            h.autoclearFeatures = b.getBE(UInt64.self, at: 88)
            h.refcountOrder = b.getBE(UInt32.self, at: 96)
            h.headerLength = b.getBE(UInt32.self, at: 100)
        } else {
            h.headerLength = 72
        }
        guard (9...21).contains(h.clusterBits) else {
            throw DiskImageError(.corrupt, "\(path): qcow2 cluster_bits \(h.clusterBits) is out of range 9...21")
        }
        guard h.cryptMethod == 0 else {
            throw DiskImageError(.unsupported, "\(path): encrypted qcow2 images are not supported")
        }
        // Incompatible feature bits (qcow2.txt): 0 dirty, 1 corrupt, 2 external data file,
        // 3 compression type, 4 extended L2 entries.
        if h.incompatibleFeatures & 0b10 != 0 {
            throw DiskImageError(.corrupt, "\(path): the qcow2 image is marked corrupt")
        }
        let known: UInt64 = 0b1
        if h.incompatibleFeatures & ~known != 0 {
            throw DiskImageError(
                .unsupported,
                "\(path): qcow2 incompatible features 0x\(String(h.incompatibleFeatures, radix: 16)) are not supported")
        }
        return h
    }
}

extension Qcow2Header {
    /// Checks every field that locates or sizes something against the file and qemu's own limits, so
    /// that no later arithmetic can overflow.
    func checkRanges(fileSize: UInt64, path: String) throws(DiskImageError) {
        func corrupt(_ what: String) -> DiskImageError { DiskImageError(.corrupt, "\(path): qcow2 \(what)") }
        let cluster = UInt64(clusterSize)
        if version == 3 {
            guard headerLength >= Qcow2Header.v3Length, UInt64(headerLength) <= cluster else {
                throw corrupt("header length \(headerLength) is out of range \(Qcow2Header.v3Length)...\(cluster)")
            }
            guard refcountOrder <= 6 else { throw corrupt("refcount order \(refcountOrder) is above 6") }
        }
        guard size <= DiskImage.maxVirtualSize else {
            throw corrupt("virtual size \(size) is larger than \(DiskImage.maxVirtualSize)")
        }
        let span = cluster * cluster / 8
        let needed = size / span + (size % span == 0 ? 0 : 1)
        guard UInt64(l1Size) >= needed, l1Size <= Qcow2Reader.maxL1Entries else {
            throw corrupt("L1 table of \(l1Size) entries cannot map \(size) bytes")
        }
        guard l1TableOffset % cluster == 0, fits(l1TableOffset, UInt64(l1Size) * 8, in: fileSize) else {
            throw DiskImageError(
                .truncated, "\(path) is truncated or corrupt: the qcow2 L1 table lies past the end of the file")
        }
        guard refcountTableOffset % cluster == 0, refcountTableClusters <= (8 << 20) / UInt32(clusterSize),
            fits(refcountTableOffset, UInt64(refcountTableClusters) * cluster, in: fileSize.roundedUp(to: cluster))
        else {
            throw corrupt(
                "refcount table (\(refcountTableClusters) clusters at \(refcountTableOffset)) is out of range")
        }
        guard nbSnapshots <= 65536, nbSnapshots == 0 || (snapshotsOffset % 8 == 0 && snapshotsOffset < fileSize)
        else {
            throw corrupt("snapshot table (\(nbSnapshots) at \(snapshotsOffset)) is out of range")
        }
        if backingFileOffset != 0 {
            guard backingFileSize > 0, backingFileSize <= 1023, backingFileOffset <= cluster,
                fits(backingFileOffset, UInt64(backingFileSize), in: fileSize)
            else {
                throw corrupt("backing file name (\(backingFileSize) bytes at \(backingFileOffset)) is out of range")
            }
        }
    }
}

/// Whether `length` bytes at `offset` lie within `size`, without overflowing.
func fits(_ offset: UInt64, _ length: UInt64, in size: UInt64) -> Bool {
    offset <= size && length <= size - offset
}

/// L2 entry bits (qcow2.txt, "Cluster mapping").
enum Qcow2Entry {
    static let copied: UInt64 = 1 << 63
    static let compressed: UInt64 = 1 << 62
    static let zero: UInt64 = 1
    static let offsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00
}
