import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

extension Ext4Writer {
    /// Adds everything under the folder `root`, as `mke2fs -d` copies a tree: names in byte order,
    /// depth first, hard links found by device and inode number, extended attributes read with
    /// `lgetxattr`, and holes found with SEEK_DATA/SEEK_HOLE left holes.
    /// - Parameter prefix: where in the file system the folder's contents go ("" for the root,
    ///   which then takes the folder's own owner, mode and time).
    package func addTree(_ root: String, at prefix: String = "") throws(Ext4Error) {
        var links: [Ext4TreeSource.FileID: String] = [:]
        try addTreeEntry(root, path: prefix, links: &links)
    }

    private func addTreeEntry(
        _ source: String, path: String, links: inout [Ext4TreeSource.FileID: String]
    ) throws(Ext4Error) {
        var status = stat()
        guard lstat(source, &status) == 0 else {
            throw Ext4Error(.contents, "\(source): cannot stat: \(Errno(rawValue: errno))")
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
            guard count >= 0 else {
                throw Ext4Error(.contents, "\(source): cannot read link: \(Errno(rawValue: errno))")
            }
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
