#if canImport(Glibc)
    import Glibc
#endif

extension Ext4Writer {
    /// Adds everything under the folder `root`, as `mke2fs -d` copies a tree: names in byte order,
    /// depth first, hard links found by device and inode number, extended attributes read with
    /// `lgetxattr`, and holes found with SEEK_DATA/SEEK_HOLE left holes.
    /// - Parameter prefix: where in the file system the folder's contents go ("" for the root,
    ///   which then takes the folder's own owner, mode and time).
    public func addTree(_ root: String, at prefix: String = "") throws(Ext4Error) {
        var links: [Ext4TreeSource.FileID: String] = [:]
        try addTreeEntry(root, path: prefix, links: &links)
    }

    private func addTreeEntry(
        _ source: String, path: String, links: inout [Ext4TreeSource.FileID: String]
    ) throws(Ext4Error) {
        var status = stat()
        guard lstat(source, &status) == 0 else {
            throw Ext4Error(.contents, "\(source): cannot stat: \(Ext4Device.errorText)")
        }
        let attributes = try Ext4TreeSource.extendedAttributes(source)
        var entry = Ext4Entry(
            path: path, kind: .directory, permissions: UInt16(status.st_mode & 0o7777), uid: status.st_uid,
            gid: status.st_gid, modificationTime: Int64(status.st_mtim.tv_sec), extendedAttributes: attributes)
        let id = Ext4TreeSource.FileID(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        let type = status.st_mode & S_IFMT
        if type != S_IFDIR, status.st_nlink > 1 {
            if let first = links[id] {
                entry.kind = .hardLink(target: first)
                try add(entry)
                return
            }
            links[id] = path
        }
        switch type {
        case S_IFDIR:
            try add(entry)
            for name in try Ext4TreeSource.names(in: source) {
                try addTreeEntry(source + "/" + name, path: path.isEmpty ? name : path + "/" + name, links: &links)
            }
            return
        case S_IFREG:
            entry.kind = .regularFile(size: Int64(status.st_size))
            var contents = try Ext4TreeSource.File(path: source, size: Int64(status.st_size))
            try add(entry, contents: &contents)
            return
        case S_IFLNK:
            var target = [CChar](repeating: 0, count: 4097)
            let count = readlink(source, &target, 4096)
            guard count >= 0 else { throw Ext4Error(.contents, "\(source): cannot read link: \(Ext4Device.errorText)") }
            entry.kind = .symlink(
                target: String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case S_IFCHR, S_IFBLK:
            let device = UInt64(status.st_rdev)
            // glibc's gnu_dev_major and gnu_dev_minor, which are macros Swift does not import.
            let major = UInt32(truncatingIfNeeded: (device >> 8) & 0xFFF | (device >> 32) & ~0xFFF)
            let minor = UInt32(truncatingIfNeeded: device & 0xFF | (device >> 12) & ~0xFF)
            entry.kind =
                type == S_IFCHR
                ? .characterDevice(major: major, minor: minor) : .blockDevice(major: major, minor: minor)
        case S_IFIFO: entry.kind = .fifo
        case S_IFSOCK: entry.kind = .socket
        default: throw Ext4Error(.contents, "\(source): a file of unknown type")
        }
        try add(entry)
    }
}

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
