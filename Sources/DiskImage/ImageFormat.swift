/// A disk image format kiln reads and writes.
package enum ImageFormat: String, Sendable, CaseIterable, Codable {
    case raw
    case qcow2
    case vmdk
    case vhd
    case vhdx
    case vdi

    /// The format a file name's extension names, if any (`.img` and `.raw` are raw).
    package static func fromExtension(_ path: String) -> ImageFormat? {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
        switch path[path.index(after: dot)...].lowercased() {
        case "raw", "img": return .raw
        case "qcow2", "qcow": return .qcow2
        case "vmdk": return .vmdk
        case "vhd", "vpc": return .vhd
        case "vhdx": return .vhdx
        case "vdi": return .vdi
        default: return nil
        }
    }

    /// The format qemu names `name` (`vpc` is VHD).
    package init?(qemuName name: String) {
        if name == "vpc" {
            self = .vhd
        } else {
            self.init(rawValue: name)
        }
    }

    /// The name qemu-img uses for the format.
    package var qemuName: String { self == .vhd ? "vpc" : rawValue }
}

/// A variant within a format.
package enum ImageSubformat: String, Sendable, Codable {
    /// VMDK: one file, sparse grains, grain tables up front (Workstation, qemu's default).
    case monolithicSparse
    /// VMDK: compressed grains with markers, tables at the end (ESXi imports, OVA).
    case streamOptimized
    /// VHD: the raw data followed by a footer (Azure needs this, sized to a whole MiB).
    case fixed
    /// VHD, VHDX, VDI: blocks allocated as data arrives.
    case dynamic
}

/// What a reader knows about an image.
package struct ImageInfo: Sendable, Equatable {
    package var format: ImageFormat
    package var subformat: ImageSubformat?
    /// Bytes the guest sees.
    package var virtualSize: UInt64
    /// Bytes the image file occupies on disk.
    package var allocatedBytes: UInt64
    /// Bytes of the image file.
    package var fileSize: UInt64
    /// Cluster, grain or block size, where the format has one.
    package var clusterSize: Int?
    /// A backing file the image reads through to (qcow2), as the image names it.
    package var backingFile: String?
    /// The backing file's format as the image records it (qcow2's backing format extension).
    package var backingFormat: String?
    /// Whether the backing file was opened (only with `OpenOptions.allowBacking`).
    package var backingFollowed: Bool
    /// Whether some clusters are compressed.
    package var compressed: Bool

    package init(
        format: ImageFormat, subformat: ImageSubformat? = nil, virtualSize: UInt64, allocatedBytes: UInt64,
        fileSize: UInt64, clusterSize: Int? = nil, backingFile: String? = nil, backingFormat: String? = nil,
        backingFollowed: Bool = false, compressed: Bool = false
    ) {
        self.backingFormat = backingFormat
        self.backingFollowed = backingFollowed
        self.format = format
        self.subformat = subformat
        self.virtualSize = virtualSize
        self.allocatedBytes = allocatedBytes
        self.fileSize = fileSize
        self.clusterSize = clusterSize
        self.backingFile = backingFile
        self.compressed = compressed
    }
}
