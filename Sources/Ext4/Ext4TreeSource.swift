#if canImport(Glibc)
    import Glibc
#endif

/// Reading a host folder for `addTree`.
enum Ext4TreeSource {
    struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    static func names(in folder: String) throws(Ext4Error) -> [String] {
        guard let directory = opendir(folder) else {
            throw Ext4Error(.contents, "\(folder): cannot list: \(Ext4Device.errorText)")
        }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return names.sorted { Ext4Bytes.precedes($0, $1) }.map { String(decoding: $0, as: UTF8.self) }
    }

    private typealias ListAttributes = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<CChar>?, Int) -> Int
    private typealias GetAttribute =
        @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int

    /// glibc's `llistxattr` and `lgetxattr` (sys/xattr.h), which Swift's Glibc module leaves out.
    private static let llistxattr: ListAttributes? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "llistxattr")
        .map { unsafeBitCast($0, to: ListAttributes.self) }
    private static let lgetxattr: GetAttribute? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "lgetxattr")
        .map { unsafeBitCast($0, to: GetAttribute.self) }

    static func extendedAttributes(_ path: String) throws(Ext4Error) -> [Ext4ExtendedAttribute] {
        guard let llistxattr, let lgetxattr else { return [] }
        let size = llistxattr(path, nil, 0)
        guard size > 0 else { return [] }
        var list = [CChar](repeating: 0, count: size)
        let got = llistxattr(path, &list, size)
        guard got >= 0 else { throw Ext4Error(.contents, "\(path): cannot list attributes: \(Ext4Device.errorText)") }
        var attributes: [Ext4ExtendedAttribute] = []
        for name in list[0..<got].split(separator: 0) {
            let name = String(decoding: name.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let length = lgetxattr(path, name, nil, 0)
            guard length >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: length)
            let read = lgetxattr(path, name, &value, length)
            guard read >= 0 else { continue }
            attributes.append(Ext4ExtendedAttribute(name: name, value: Array(value[0..<read])))
        }
        return attributes
    }

    /// A host file's data regions, read a MiB at a time.
    struct File: Ext4Contents {
        let path: String
        let size: Int64

        init(path: String, size: Int64) throws(Ext4Error) {
            self.path = path
            self.size = size
        }

        // lseek's SEEK_DATA and SEEK_HOLE (Linux), which Swift's Glibc module leaves out.
        private static let seekData: Int32 = 3
        private static let seekHole: Int32 = 4

        mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Ext4Error(.contents, "\(path): cannot open: \(Ext4Device.errorText)") }
            defer { close(fd) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            var position: Int64 = 0
            while position < size {
                let data = Int64(lseek(fd, off_t(position), Self.seekData))
                if data < 0 { break }  // ENXIO: only a hole is left
                let hole = min(Int64(lseek(fd, off_t(data), Self.seekHole)), size)
                position = data
                while position < hole {
                    // pread: the lseeks above moved the file's offset.
                    let wanted = Int(min(Int64(buffer.count), hole - position))
                    let count = pread(fd, buffer.baseAddress, wanted, off_t(position))
                    guard count > 0 else {
                        throw Ext4Error(.contents, "\(path): cannot read at \(position): \(Ext4Device.errorText)")
                    }
                    try body(position, UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    position += Int64(count)
                }
            }
        }
    }
}
