/// Random access to the guest-visible bytes of an image, whatever its format.
public protocol DiskReader: AnyObject {
    var info: ImageInfo { get }

    /// Fills `buffer` with the guest bytes at `offset`; bytes past the virtual size read as zero.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError)

    /// Sorted, disjoint ranges that may hold non-zero data; everything else reads as zero.
    func dataRanges() throws(DiskImageError) -> [Range<UInt64>]
}

extension DiskReader {
    public var virtualSize: UInt64 { info.virtualSize }

    /// Reads `count` bytes at `offset`.
    public func read(count: Int, at offset: UInt64) throws(DiskImageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var failure: DiskImageError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(DiskImageError) { try read(into: raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }
}

/// Opening an image: the format comes from its first bytes, never from its name.
public enum DiskImage {
    /// Detects the format of the file at `path` from its magic bytes.
    public static func detectFormat(_ path: String) throws(DiskImageError) -> ImageFormat {
        let file = try ImageFile(reading: path)
        return try detectFormat(file)
    }

    static func detectFormat(_ file: ImageFile) throws(DiskImageError) -> ImageFormat {
        let size = try file.size
        var head = Bytes(count: 512)
        if size > 0 {
            head.storage.withUnsafeMutableBytes { raw in try? file.readPadded(into: raw, at: 0) }
        }
        if head.slice(0, 4) == [0x51, 0x46, 0x49, 0xFB] { return .qcow2 }
        if head.ascii(0, 4) == "KDMV" { return .vmdk }
        if head.ascii(0, 8) == "vhdxfile" { return .vhdx }
        if head.getLE(UInt32.self, at: 64) == VDI.signature { return .vdi }
        if head.ascii(0, 8) == "conectix" { return .vhd }
        if head.ascii(0, 21) == "# Disk DescriptorFile" { return .vmdk }
        if size >= 512 {
            let tail = try file.readBytes(512, at: size - 512)
            if tail.ascii(0, 8) == "conectix" { return .vhd }
        }
        return .raw
    }

    /// Opens the image at `path`, detecting its format.
    ///
    /// - Parameter expected: when given (from a name's extension or the caller), a different detected
    ///   format is an error rather than a guess.
    public static func open(_ path: String, expecting expected: ImageFormat? = nil) throws(DiskImageError)
        -> any DiskReader
    {
        let file = try ImageFile(reading: path)
        let format = try detectFormat(file)
        if let expected, expected != format {
            let what =
                format == .raw
                ? "no \(expected.rawValue) header (it would read as raw data)" : "a \(format.rawValue) image"
            throw DiskImageError(
                .formatMismatch, "\(path) is not a \(expected.rawValue) image as its name says: it has \(what)")
        }
        return try open(file, format: format, depth: 0)
    }

    /// Opens `path` and checks that its content matches its extension, when the extension names a format.
    public static func openChecked(_ path: String) throws(DiskImageError) -> any DiskReader {
        try open(path, expecting: ImageFormat.fromExtension(path))
    }

    static func open(_ file: ImageFile, format: ImageFormat, depth: Int) throws(DiskImageError) -> any DiskReader {
        switch format {
        case .raw: return try RawReader(file: file)
        case .qcow2: return try Qcow2Reader(file: file, depth: depth)
        case .vmdk: return try VMDKReader(file: file)
        case .vhd: return try VHDReader(file: file)
        case .vhdx: return try VHDXReader(file: file)
        case .vdi: return try VDIReader(file: file)
        }
    }
}
