import ArgumentParser
import DiskImage

/// How `convert` and `inspect` open their input image.
struct InputImageOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Read the input as this format (raw, qcow2, vmdk, vhd, vhdx, vdi) instead of detecting it.")
    var inputFormat: String?

    @Flag(
        name: .long,
        help: """
            Read through a qcow2 backing file: only a regular file in the image's own folder, of the format \
            the image records for it.
            """)
    var allowBacking = false

    func validate() throws {
        if let inputFormat, ImageFormat(qemuName: inputFormat.lowercased()) == nil {
            throw ValidationError(
                "unknown input format '\(inputFormat)' (expected raw, qcow2, vmdk, vhd, vhdx or vdi)")
        }
    }

    var openOptions: OpenOptions {
        OpenOptions(format: inputFormat.flatMap { ImageFormat(qemuName: $0.lowercased()) }, allowBacking: allowBacking)
    }

    func open(_ path: String) throws(DiskImageError) -> any DiskReader {
        try DiskImage.openChecked(path, options: openOptions)
    }
}
