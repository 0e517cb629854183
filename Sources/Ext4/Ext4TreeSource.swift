import SystemPackage

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
            throw Ext4Error(.contents, "\(folder): cannot list: \(Errno(rawValue: errno))")
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
        guard got >= 0 else { throw Ext4Error(.contents, "\(path): cannot list attributes: \(Errno(rawValue: errno))") }
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

        // lseek's SEEK_DATA and SEEK_HOLE (Linux), which swift-system names on Darwin and FreeBSD only.
        private static let seekData = FileDescriptor.SeekOrigin(rawValue: 3)
        private static let seekHole = FileDescriptor.SeekOrigin(rawValue: 4)

        mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
            let fd: FileDescriptor
            do {
                fd = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
            } catch {
                throw Ext4Error(.contents, "\(path): cannot open: \(error)")
            }
            defer { try? fd.close() }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            var position: Int64 = 0
            while position < size {
                // ENXIO: only a hole is left.
                guard let data = try? fd.seek(offset: position, from: Self.seekData) else { break }
                let hole = min((try? fd.seek(offset: data, from: Self.seekHole)) ?? -1, size)
                position = data
                while position < hole {
                    // pread: the lseeks above moved the file's offset.
                    let wanted = Int(min(Int64(buffer.count), hole - position))
                    let count: Int
                    do {
                        count = try fd.read(
                            fromAbsoluteOffset: position,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
                    } catch {
                        throw Ext4Error(.contents, "\(path): cannot read at \(position): \(error)")
                    }
                    guard count > 0 else {
                        throw Ext4Error(.contents, "\(path): cannot read at \(position): end of file")
                    }
                    try body(position, UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    position += Int64(count)
                }
            }
        }
    }
}
