import DiskImage

/// The format QEMU is told to open an image as (`format=`): the one kiln's own readers detect, so
/// that `kiln test` and `kiln run` boot exactly what `kiln inspect` and `kiln convert` read. A fixed
/// VHD whose guest data begins with a qcow2 header stays a VHD, and an image that reads through a
/// backing file is refused: QEMU would open that file, wherever the image says it is.
enum DiskFormat {
    static func qemuName(of path: String) throws(BuildVMError) -> String {
        let info: ImageInfo
        do {
            info = try DiskImage.open(path).info
        } catch {
            throw BuildVMError(.io, error.message)
        }
        if let backing = info.backingFile {
            throw BuildVMError(
                .io,
                "\(path) reads through backing file '\(backing)': kiln boots whole images only "
                    + "(kiln convert --allow-backing \(path) OUT makes one)")
        }
        return info.format.qemuName
    }
}
