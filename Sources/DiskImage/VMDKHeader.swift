import Foundation

/// The hosted sparse extent header (VMware "Virtual Disk Format 5.0", "Hosted Sparse Extent Header");
/// 512 bytes, every field little-endian, sizes and offsets in 512-byte sectors.
struct VMDKHeader: Equatable {
    static let magic: UInt32 = 0x564D_444B  // "KDMV" on disk
    static let gdAtEnd: UInt64 = 0xFFFF_FFFF_FFFF_FFFF

    // flags: bit 0 valid newline test, bit 1 redundant grain table, bit 2 zeroed-grain GTEs,
    // bit 16 compressed grains, bit 17 markers.
    static let flagNewlineTest: UInt32 = 1 << 0
    static let flagRedundantTable: UInt32 = 1 << 1
    static let flagZeroGrain: UInt32 = 1 << 2
    static let flagCompressed: UInt32 = 1 << 16
    static let flagMarkers: UInt32 = 1 << 17

    var version: UInt32
    var flags: UInt32
    var capacity: UInt64
    var grainSize: UInt64 = 128
    var descriptorOffset: UInt64
    var descriptorSize: UInt64
    var numGTEsPerGT: UInt32 = 512
    var rgdOffset: UInt64
    var gdOffset: UInt64
    var overHead: UInt64
    var compressAlgorithm: UInt16

    func encoded() -> Bytes {
        var b = Bytes(count: 512)
        b.putLE(VMDKHeader.magic, at: 0)
        b.putLE(version, at: 4)
        b.putLE(flags, at: 8)
        b.putLE(capacity, at: 12)
        b.putLE(grainSize, at: 20)
        b.putLE(descriptorOffset, at: 28)
        b.putLE(descriptorSize, at: 36)
        b.putLE(numGTEsPerGT, at: 44)
        b.putLE(rgdOffset, at: 48)
        b.putLE(gdOffset, at: 56)
        b.putLE(overHead, at: 64)
        b[72] = 0  // uncleanShutdown
        // The newline detection characters: a file mangled by a text-mode transfer fails this test.
        b[73] = 0x0A
        b[74] = 0x20
        b[75] = 0x0D
        b[76] = 0x0A
        b.putLE(compressAlgorithm, at: 77)
        return b
    }

    static func decode(_ b: Bytes, path: String) throws(DiskImageError) -> VMDKHeader {
        guard b.getLE(UInt32.self, at: 0) == magic else {
            throw DiskImageError(.corrupt, "\(path): no VMDK sparse extent magic")
        }
        let h = VMDKHeader(
            version: b.getLE(UInt32.self, at: 4), flags: b.getLE(UInt32.self, at: 8),
            capacity: b.getLE(UInt64.self, at: 12), grainSize: b.getLE(UInt64.self, at: 20),
            descriptorOffset: b.getLE(UInt64.self, at: 28), descriptorSize: b.getLE(UInt64.self, at: 36),
            numGTEsPerGT: b.getLE(UInt32.self, at: 44), rgdOffset: b.getLE(UInt64.self, at: 48),
            gdOffset: b.getLE(UInt64.self, at: 56), overHead: b.getLE(UInt64.self, at: 64),
            compressAlgorithm: b.getLE(UInt16.self, at: 77))
        guard (1...3).contains(h.version) else {
            throw DiskImageError(.unsupported, "\(path): VMDK sparse extent version \(h.version) is not supported")
        }
        guard h.grainSize >= 1, h.grainSize <= 2048, h.grainSize & (h.grainSize - 1) == 0 else {
            throw DiskImageError(.corrupt, "\(path): VMDK grain size \(h.grainSize) sectors is invalid")
        }
        guard h.numGTEsPerGT >= 1, h.numGTEsPerGT <= 1 << 16 else {
            throw DiskImageError(.corrupt, "\(path): VMDK grain table size \(h.numGTEsPerGT) is invalid")
        }
        guard h.flags & flagNewlineTest == 0 || (b[73], b[74], b[75], b[76]) == (0x0A, 0x20, 0x0D, 0x0A) else {
            throw DiskImageError(.corrupt, "\(path): VMDK newline test failed (was the file transferred in text mode?)")
        }
        return h
    }
}

/// Stream-optimized markers (Virtual Disk Format 5.0, "Stream-Optimized Compressed Sparse Extents"):
/// a sector with value (u64), size (u32) and type (u32), all little-endian.
enum VMDKMarker {
    static let endOfStream: UInt32 = 0
    static let grainTable: UInt32 = 1
    static let grainDirectory: UInt32 = 2
    static let footer: UInt32 = 3

    static func encoded(value: UInt64, type: UInt32) -> [UInt8] {
        var b = Bytes(count: 512)
        b.putLE(value, at: 0)
        b.putLE(UInt32(0), at: 8)
        b.putLE(type, at: 12)
        return b.storage
    }
}

/// The embedded text descriptor (Virtual Disk Format 5.0, "The Descriptor File").
struct VMDKDescriptor {
    var createType: String
    var sectors: UInt64
    var extentName: String
    var adapter: String
    var cid: UInt32

    var text: String {
        let heads: UInt64 = adapter == "ide" ? 16 : 255
        let cylinders = min(sectors / (heads * 63), 65535)
        return """
            # Disk DescriptorFile
            version=1
            CID=\(String(cid, radix: 16).leftPadded(8))
            parentCID=ffffffff
            createType="\(createType)"

            # Extent description
            RW \(sectors) SPARSE "\(extentName)"

            # The Disk Data Base
            #DDB

            ddb.virtualHWVersion = "4"
            ddb.geometry.cylinders = "\(cylinders)"
            ddb.geometry.heads = "\(heads)"
            ddb.geometry.sectors = "63"
            ddb.adapterType = "\(adapter)"

            """
    }

    /// The value of `createType` in descriptor text, if present.
    static func createType(in text: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "createType" {
                return parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
