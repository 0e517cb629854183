import ArgumentParser
import DiskImage

struct ConvertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a disk image from any supported format to any other.",
        discussion: """
            The input's format is detected from its content; the output's comes from --format or, without it, \
            from OUT's extension (.raw/.img, .qcow2, .vmdk, .vhd, .vhdx, .vdi). With --compress, qcow2 gets \
            zlib-compressed clusters and vmdk becomes streamOptimized (what ESXi imports).

            The output is deterministic: the identifiers VHD, VHDX, VDI and VMDK store are derived from --seed, \
            or without it from the image's content, and the VHD creation time is SOURCE_DATE_EPOCH when set.
            """
    )

    @Argument(help: "The source image.")
    var inputPath: String

    @Argument(help: "The image to write.")
    var outputPath: String

    @Option(name: .long, help: "Output format: raw, qcow2, vmdk, vhd, vhdx, vdi.")
    var format: String?

    @Option(name: .long, help: "Subformat: streamOptimized or monolithicSparse (vmdk), fixed or dynamic (vhd).")
    var subformat: String?

    @Flag(name: .long, help: "Compress: zlib clusters for qcow2, streamOptimized for vmdk.")
    var compress = false

    @Option(
        name: .long,
        help: "zlib level for compressed output, 1 (fastest) to 9 (smallest); default: tuned level 5 (qemu-img: 6).")
    var compressionLevel: Int32?

    @Option(name: .long, help: "Text to derive the image's UUIDs from (default: a digest of its content).")
    var seed: String?

    @Flag(
        name: .long,
        help: "Write past the page cache (O_DIRECT, as qemu-img -t none): less CPU, bound by the disk's speed.")
    var direct = false

    @OptionGroup var input: InputImageOptions

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        try input.validate()
        if let format, ImageFormat(rawValue: format.lowercased()) == nil && format.lowercased() != "vpc" {
            throw ValidationError("unknown format '\(format)' (expected raw, qcow2, vmdk, vhd, vhdx or vdi)")
        }
        if let compressionLevel, !(1...9).contains(compressionLevel) {
            throw ValidationError("--compression-level must be between 1 and 9")
        }
        if let subformat, ImageSubformat(rawValue: subformat) == nil {
            throw ValidationError(
                "unknown subformat '\(subformat)' (expected streamOptimized, monolithicSparse, fixed or dynamic)")
        }
    }

    /// Bytes as a person reads them: "1.5 GiB", "980 KiB", "12 bytes".
    static func size(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (unit, name) in units where bytes >= unit {
            let value = Double(bytes) / Double(unit)
            return value >= 100 ? "\(Int(value.rounded())) \(name)" : String(format: "%.1f %@", value, name)
        }
        return "\(bytes) bytes"
    }

    func run() async throws {
        let target: ImageFormat
        if let format {
            target = format.lowercased() == "vpc" ? .vhd : ImageFormat(rawValue: format.lowercased()) ?? .raw
        } else if let fromName = ImageFormat.fromExtension(outputPath) {
            target = fromName
        } else {
            throw CommandFailure("cannot tell the output format from '\(outputPath)': give --format")
        }
        var sub = subformat.flatMap(ImageSubformat.init(rawValue:))
        if target == .vmdk && compress && sub == nil { sub = .streamOptimized }
        if compress && !(target == .qcow2 || (target == .vmdk && sub == .streamOptimized)) {
            throw CommandFailure("--compress applies to qcow2 and vmdk only, not \(target.rawValue)")
        }
        if let sub {
            let allowed: [ImageSubformat] =
                switch target {
                case .vmdk: [.monolithicSparse, .streamOptimized]
                case .vhd: [.fixed, .dynamic]
                case .vhdx, .vdi: [.dynamic]
                default: []
                }
            guard allowed.contains(sub) else {
                throw CommandFailure("subformat \(sub.rawValue) does not apply to \(target.rawValue)")
            }
        }
        let console = progress.console()
        var options = ExportOptions(
            format: target, subformat: sub, compress: compress && target == .qcow2, compressionLevel: compressionLevel,
            seed: seed, timestamp: SourceDateEpoch.fromEnvironment().map { UInt64($0) })
        options.directIO = direct
        do {
            let reader = try input.open(inputPath)
            if let backing = reader.info.backingFile {
                guard reader.info.backingFollowed else {
                    throw CommandFailure(
                        "\(inputPath) reads through backing file '\(backing)'; kiln opens backing files only with "
                            + "--allow-backing, and then only a file beside the image of the format the image records")
                }
                console.write("kiln: \(inputPath) reads through backing file '\(backing)'")
            }
            let written = try ImageConverter.convert(reader, to: outputPath, options: options, progress: console.sink)
            console.write(
                "kiln: wrote \(outputPath) (\(target.rawValue), \(Self.size(written.virtualSize)) virtual, "
                    + "\(Self.size(written.allocatedBytes)) on disk)")
            console.result(
                Result(
                    output: outputPath, format: target.rawValue, virtualSize: written.virtualSize,
                    fileSize: written.fileSize, allocatedBytes: written.allocatedBytes))
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// `kiln convert --json`'s result: the image written and its sizes.
    struct Result: Encodable {
        let output: String
        let format: String
        let virtualSize: UInt64
        let fileSize: UInt64
        let allocatedBytes: UInt64

        enum CodingKeys: String, CodingKey {
            case output, format
            case virtualSize = "virtual_size"
            case fileSize = "file_size"
            case allocatedBytes = "allocated_bytes"
        }
    }
}
