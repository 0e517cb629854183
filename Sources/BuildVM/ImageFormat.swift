#if canImport(Glibc)
    import Glibc
#endif

/// A disk image's format, told by its magic bytes, as QEMU's `format=` names it.
enum ImageFormat: String, Sendable {
    case raw, qcow2, qed, vmdk, vpc, vhdx, vdi

    /// Reads the first bytes of `path` (and a VHD's footer at its end).
    static func detect(_ path: String) throws(BuildVMError) -> ImageFormat {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BuildVMError(.io, "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 512)
        let count = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw BuildVMError(.io, "cannot read \(path)") }
        head = Array(head[0..<count])
        if let format = detect(head: head) { return format }
        // A fixed VHD is raw data followed by a 512-byte footer whose cookie is "conectix".
        var info = stat()
        if fstat(fd, &info) == 0, info.st_size >= 1024 {
            var footer = [UInt8](repeating: 0, count: 8)
            let read = footer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, off_t(info.st_size) - 512) }
            if read == 8 && footer == Array("conectix".utf8) { return .vpc }
        }
        return .raw
    }

    static func detect(head: [UInt8]) -> ImageFormat? {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<offset + magic.count]) == magic
        }
        if starts([0x51, 0x46, 0x49, 0xFB]) { return .qcow2 }  // "QFI\xfb", qcow2 spec "Header"
        if starts([0x51, 0x45, 0x44, 0x00]) { return .qed }  // "QED\0"
        if starts(Array("KDMV".utf8)) || starts(Array("# Disk DescriptorFile".utf8)) { return .vmdk }
        if starts(Array("vhdxfile".utf8)) { return .vhdx }  // VHDX file type identifier, offset 0
        if starts(Array("conectix".utf8)) { return .vpc }  // dynamic VHD: footer copy at offset 0
        // VDI: signature 0xBEDA107F, little-endian, at offset 0x40.
        if starts([0x7F, 0x10, 0xDA, 0xBE], at: 0x40) { return .vdi }
        return nil
    }
}
