import Foundation

/// Random access to the guest-visible bytes of an image, whatever its format.
package protocol DiskReader: AnyObject {
    var info: ImageInfo { get }

    /// Fills `buffer` with the guest bytes at `offset`; bytes past the virtual size read as zero.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError)

    /// Sorted, disjoint ranges that may hold non-zero data; everything else reads as zero.
    func dataRanges() throws(DiskImageError) -> [Range<UInt64>]
}

extension DiskReader {
    package var virtualSize: UInt64 { info.virtualSize }

    /// Reads `count` bytes at `offset`.
    package func read(count: Int, at offset: UInt64) throws(DiskImageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var failure: DiskImageError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(DiskImageError) { try read(into: raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }
}

/// How an image is opened.
package struct OpenOptions: Sendable, Equatable {
    /// Read the image as this format, whatever its content or its name says.
    package var format: ImageFormat?
    /// Read through a qcow2 backing file. Even then only a regular file in the image's own folder,
    /// named by a bare file name (no `/`), is opened, never a link, FIFO or device, and its content must
    /// be of the format the image records for it. Without this, an image with a backing file opens
    /// (so that it can be inspected) but refuses to be read.
    package var allowBacking: Bool

    package init(format: ImageFormat? = nil, allowBacking: Bool = false) {
        self.format = format
        self.allowBacking = allowBacking
    }
}

/// Opening an image: the format comes from its content, never from its name alone.
package enum DiskImage {
    /// The largest virtual size kiln reads or writes (4 EiB): far beyond any real disk, and small enough
    /// that rounding a size up to any block size cannot overflow.
    package static let maxVirtualSize: UInt64 = 1 << 62

    /// Detects the format of the file at `path` from its content.
    package static func detectFormat(_ path: String) throws(DiskImageError) -> ImageFormat {
        let file = try ImageFile(reading: path)
        return try detectFormat(file, hint: nil)
    }

    /// The format of `file` from its content.
    ///
    /// Most formats start with a magic number; a fixed VHD is the guest's bytes followed by a footer,
    /// so its start is whatever the guest wrote, a qcow2 header included. When the file both starts
    /// with another format's magic and ends with a valid fixed-VHD footer that accounts for exactly the
    /// bytes before it, the fixed VHD wins: it is the reading that follows no pointer found in the file.
    /// `hint` (from the file's name) settles such a tie the other way.
    static func detectFormat(_ file: ImageFile, hint: ImageFormat?) throws(DiskImageError) -> ImageFormat {
        let size = try file.size
        var head = Bytes(count: 512)
        if size > 0 {
            head.storage.withUnsafeMutableBytes { raw in try? file.readPadded(into: raw, at: 0) }
        }
        var headFormat: ImageFormat?
        if head.slice(0, 4) == [0x51, 0x46, 0x49, 0xFB] {
            headFormat = .qcow2
        } else if head.ascii(0, 4) == "KDMV" || head.ascii(0, 21) == "# Disk DescriptorFile" {
            headFormat = .vmdk
        } else if head.ascii(0, 8) == "vhdxfile" {
            headFormat = .vhdx
        } else if head.getLE(UInt32.self, at: 64) == VDI.signature {
            headFormat = .vdi
        } else if head.ascii(0, 8) == "conectix" {
            headFormat = .vhd
        }
        if headFormat == .vhd { return .vhd }
        guard size >= 512 else { return headFormat ?? .raw }
        let tail = try file.readBytes(512, at: size - 512)
        guard tail.ascii(0, 8) == "conectix" else { return headFormat ?? .raw }
        guard let headFormat else { return .vhd }
        if let footer = try? VHDFooter.decode(tail, path: file.path), footer.diskType == VHDFooter.fixedType,
            footer.currentSize == size - 512, hint != headFormat
        {
            return .vhd
        }
        return headFormat
    }

    /// Opens the image at `path`, detecting its format.
    ///
    /// - Parameter expected: when given (from a name's extension or the caller), a different detected
    ///   format is an error rather than a guess.
    /// - Parameter options: a forced format (then neither content nor `expected` is checked) and
    ///   whether backing files are followed.
    package static func open(
        _ path: String, expecting expected: ImageFormat? = nil, options: OpenOptions = OpenOptions()
    ) throws(DiskImageError) -> any DiskReader {
        let file = try ImageFile(reading: path)
        if let forced = options.format { return try open(file, format: forced, options: options, depth: 0) }
        let format = try detectFormat(file, hint: expected)
        if let expected, expected != format {
            let what =
                format == .raw
                ? "no \(expected.rawValue) header (it would read as raw data)" : "a \(format.rawValue) image"
            throw DiskImageError(
                .formatMismatch,
                "\(path) is not a \(expected.rawValue) image as its name says: it has \(what) "
                    + "(--input-format reads it as another format)")
        }
        return try open(file, format: format, options: options, depth: 0)
    }

    /// Opens `path` and checks that its content matches its extension, when the extension names a format.
    package static func openChecked(_ path: String, options: OpenOptions = OpenOptions()) throws(DiskImageError)
        -> any DiskReader
    {
        try open(path, expecting: ImageFormat.fromExtension(path), options: options)
    }

    static func open(_ file: ImageFile, format: ImageFormat, options: OpenOptions, depth: Int) throws(DiskImageError)
        -> any DiskReader
    {
        switch format {
        case .raw: return try RawReader(file: file)
        case .qcow2: return try Qcow2Reader(file: file, options: options, depth: depth)
        case .vmdk: return try VMDKReader(file: file)
        case .vhd: return try VHDReader(file: file)
        case .vhdx: return try VHDXReader(file: file)
        case .vdi: return try VDIReader(file: file)
        }
    }

    /// Opens the backing file `name` of the image at `imagePath`: a bare file name in the image's own
    /// folder, a regular file (no link, FIFO or device), whose content is of the `recorded` format.
    static func openBacking(
        _ name: String, recorded: String?, of imagePath: String, options: OpenOptions, depth: Int
    ) throws(DiskImageError) -> any DiskReader {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !name.utf8.contains(0) else {
            throw DiskImageError(
                .backingFile,
                "\(imagePath): backing file '\(name)' is not a file beside the image; kiln opens only a backing "
                    + "file in the image's own folder")
        }
        let folder = URL(fileURLWithPath: imagePath).deletingLastPathComponent().path
        let path = folder.hasSuffix("/") ? folder + name : folder + "/" + name
        let file = try ImageFile(reading: path, regularOnly: true, noFollow: true)
        var format: ImageFormat
        if let recorded {
            guard let named = ImageFormat(qemuName: recorded) else {
                throw DiskImageError(
                    .unsupported, "\(imagePath): backing file format '\(recorded)' is not one kiln reads")
            }
            format = named
            // A raw backing file is raw whatever it holds; any other format must be what the content says.
            if named != .raw {
                let detected = try detectFormat(file, hint: named)
                guard detected == named else {
                    throw DiskImageError(
                        .formatMismatch,
                        "\(imagePath): backing file \(path) should be \(named.rawValue) but holds \(detected.rawValue)")
                }
            }
        } else {
            format = try detectFormat(file, hint: nil)
        }
        return try open(file, format: format, options: options, depth: depth)
    }
}
