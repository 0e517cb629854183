#if canImport(Glibc)
    import Glibc
#endif

extension Ext4Writer {
    /// ext4 addresses file blocks with 32 bits.
    static let maximumFileSize = Int64(UInt32.max) * Int64(Ext4Geometry.blockSize)

    func insert(_ entry: Ext4Entry, contents: inout some Ext4Contents) throws(Ext4Error) {
        let path = entry.path
        let split = try Self.validate(path)
        // Everything about the entry is checked before a byte of its data is written.
        let stored = try entry.extendedAttributes.map { (attribute) throws(Ext4Error) in
            try Ext4ExtendedAttributes.stored(attribute, path: path)
        }
        let (inlineAttributes, blockAttributes) = try Ext4ExtendedAttributes.split(stored, path: path)
        var inode = Ext4Inode(mode: entry.permissions & 0o7777, time: min(entry.modificationTime, epoch))
        inode.uid = entry.uid
        inode.gid = entry.gid
        inode.blockAttributes = blockAttributes
        if !inlineAttributes.isEmpty { inode.inlineAttributes = Ext4ExtendedAttributes.inodeArea(inlineAttributes) }

        if let existing = paths[path] {
            guard entry.kind == .directory, inodes[Int(existing) - 1].isDirectory else {
                throw Ext4Error(.invalidEntry, "\(path.isEmpty ? "/" : path): is already in the file system")
            }
            update(existing, from: inode)
            return
        }
        guard let (parentPath, name) = split else {
            throw Ext4Error(.invalidEntry, "/: the root can only be a directory")
        }
        let parent = try directory(parentPath)

        switch entry.kind {
        case .directory:
            inode.mode |= Ext4Inode.directory
            inode.links = 2
            inode.flags = Ext4Inode.extentsFlag
            let number = try append(inode)
            children[number] = []
            parents[number] = parent
            inodes[Int(parent) - 1].links += 1
            link(name, number, into: parent)
            paths[path] = number
            return
        case .regularFile(let size):
            guard size >= 0, size <= Self.maximumFileSize else {
                throw Ext4Error(.sizeMismatch, "\(path): a size of \(size) bytes is out of ext4's range")
            }
            guard size == 0 || !(contents is Ext4NoContents) else {
                throw Ext4Error(.invalidEntry, "\(path): a regular file of \(size) bytes needs its contents")
            }
            inode.mode |= Ext4Inode.regular
            inode.flags = Ext4Inode.extentsFlag
            inode.size = UInt64(size)
            _ = try reserveInode(path)
            inode.extents = try writeContents(&contents, size: size, path: path)
        case .symlink(let target):
            let bytes = Array(target.utf8)
            guard !bytes.isEmpty, bytes.count < Ext4Geometry.blockSize, !bytes.contains(0) else {
                throw Ext4Error(.invalidEntry, "\(path): a symbolic link's target must be 1 to 4095 bytes, without NUL")
            }
            inode.mode |= Ext4Inode.symlink
            inode.size = UInt64(bytes.count)
            _ = try reserveInode(path)
            if bytes.count < 60 {
                // A fast symlink: the target in i_block itself.
                inode.inlineBlock = bytes + [UInt8](repeating: 0, count: 60 - bytes.count)
            } else {
                inode.flags = Ext4Inode.extentsFlag
                var target = Ext4Bytes(bytes)
                inode.extents = try writeContents(&target, size: Int64(bytes.count), path: path)
            }
        case .hardLink(let target):
            _ = try Self.validate(target)
            let targetPath = target
            guard let number = paths[targetPath], !inodes[Int(number) - 1].isDirectory else {
                throw Ext4Error(
                    .invalidEntry, "\(path): hard link to \(target), which is not an earlier non-directory entry")
            }
            // EXT4_LINK_MAX: only directories may count past it (dir_nlink).
            guard inodes[Int(number) - 1].links < 65000 else {
                throw Ext4Error(.invalidEntry, "\(path): \(target) already has 65,000 links, ext4's most")
            }
            inodes[Int(number) - 1].links += 1
            link(name, number, into: parent)
            paths[path] = number
            return
        case .characterDevice(let major, let minor):
            inode.mode |= Ext4Inode.characterDevice
            inode.inlineBlock = Self.deviceNumber(major: major, minor: minor)
        case .blockDevice(let major, let minor):
            inode.mode |= Ext4Inode.blockDevice
            inode.inlineBlock = Self.deviceNumber(major: major, minor: minor)
        case .fifo:
            inode.mode |= Ext4Inode.fifo
            inode.inlineBlock = [UInt8](repeating: 0, count: 60)
        case .socket:
            inode.mode |= Ext4Inode.socket
            inode.inlineBlock = [UInt8](repeating: 0, count: 60)
        }
        let number = try append(inode)
        link(name, number, into: parent)
        paths[path] = number
    }

    /// Checks every component of `path` in one pass over its bytes, refusing what ext4 cannot name
    /// or what would leave the tree; returns the parent's path and the last name (nil for the root).
    static func validate(_ path: String) throws(Ext4Error) -> (parent: Substring, name: Substring)? {
        if path.isEmpty { return nil }
        let bytes = path.utf8
        var start = bytes.startIndex
        var index = start
        var lastSlash: String.Index?
        while true {
            let atEnd = index == bytes.endIndex
            if atEnd || bytes[index] == 0x2F {
                let component = bytes[start..<index]
                let length = component.count
                let dots = length <= 2 && component.allSatisfy { $0 == 0x2E }
                guard length > 0, !dots else {
                    throw Ext4Error(.invalidPath, "\(path): empty, \".\" and \"..\" components are not allowed")
                }
                guard length <= 255 else { throw Ext4Error(.invalidPath, "\(path): a name is longer than 255 bytes") }
                if atEnd { break }
                lastSlash = index
                start = bytes.index(after: index)
            } else if bytes[index] == 0 {
                throw Ext4Error(.invalidPath, "\(path): a name holds a NUL byte")
            }
            index = bytes.index(after: index)
        }
        guard let lastSlash else { return (path[path.startIndex..<path.startIndex], path[...]) }
        return (path[path.startIndex..<lastSlash], path[path.index(after: lastSlash)...])
    }

    /// The directory at `path`, made with its missing ancestors (root-owned, 0755, at the epoch)
    /// where the stream has not named them yet.
    private func directory(_ path: Substring) throws(Ext4Error) -> UInt32 {
        if path.isEmpty { return Self.rootInode }
        if let existing = paths[String(path)] {
            guard inodes[Int(existing) - 1].isDirectory else {
                throw Ext4Error(.invalidEntry, "\(path): is not a directory, yet has entries under it")
            }
            return existing
        }
        let slash = path.lastIndex(of: "/")
        let parent = try directory(slash.map { path[path.startIndex..<$0] } ?? path[path.startIndex..<path.startIndex])
        var inode = Ext4Inode(mode: Ext4Inode.directory | 0o755, time: epoch, links: 2)
        inode.flags = Ext4Inode.extentsFlag
        let made = try append(inode)
        children[made] = []
        parents[made] = parent
        inodes[Int(parent) - 1].links += 1
        link(slash.map { path[path.index(after: $0)...] } ?? path, made, into: parent)
        paths[String(path)] = made
        return made
    }

    /// A directory named again takes the entry's metadata; its links and entries stay.
    private func update(_ number: UInt32, from entry: Ext4Inode) {
        var inode = inodes[Int(number) - 1]
        inode.mode = Ext4Inode.directory | entry.mode & 0o7777
        inode.uid = entry.uid
        inode.gid = entry.gid
        inode.time = entry.time
        inode.inlineAttributes = entry.inlineAttributes
        inode.blockAttributes = entry.blockAttributes
        inodes[Int(number) - 1] = inode
    }

    private func reserveInode(_ path: String) throws(Ext4Error) -> UInt32 {
        guard inodes.count < geometry.inodeCount else {
            throw Ext4Error(.noSpace, "\(path): no inode left (\(geometry.inodeCount) in all)")
        }
        return UInt32(inodes.count + 1)
    }

    private func append(_ inode: Ext4Inode) throws(Ext4Error) -> UInt32 {
        let number = try reserveInode("inode")
        inodes.append(inode)
        return number
    }

    func link(_ name: some StringProtocol, _ number: UInt32, into directory: UInt32) {
        let type = inodes[Int(number) - 1].directoryFileType
        children[directory, default: []].append(
            Ext4DirectoryEntry(name: Array(name.utf8), inode: number, fileType: type))
    }

    /// The device number in `i_block`: the old 16-bit form where it fits, else the new 32-bit form in
    /// the second word, as the kernel writes it (`ext4_do_update_inode`).
    static func deviceNumber(major: UInt32, minor: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 60)
        if major < 256, minor < 256 {
            bytes.putLE32(major << 8 | minor, at: 0)
        } else {
            bytes.putLE32((minor & 0xFF) | (major & 0xFFF) << 8 | (minor & ~0xFF) << 12, at: 4)
        }
        return bytes
    }

    /// Writes a file's runs to newly allocated blocks and returns its extents; all-zero blocks and
    /// what no run covers stay holes.
    func writeContents(_ contents: inout some Ext4Contents, size: Int64, path: String) throws(Ext4Error) -> [Ext4Extent]
    {
        let blockSize = Int64(Ext4Geometry.blockSize)
        var extents: [Ext4Extent] = []
        var pending: Int64 = -1  // the file block assembled in `data.block`
        var end: Int64 = 0
        let data = self.data
        func emit(_ logical: Int64, _ bytes: UnsafeRawBufferPointer) throws(Ext4Error) {
            if data.isZero(bytes) { return }
            let block = try allocator.allocate()
            Ext4BlockAllocator.append(block, logical: UInt32(logical), to: &extents)
            try data.append(bytes, at: block)
        }
        do {
            try contents.forEachRun { offset, run in
                guard offset >= end else {
                    throw Ext4Error(.invalidEntry, "\(path): data at \(offset) comes after data up to \(end)")
                }
                guard offset + Int64(run.count) <= size else {
                    throw Ext4Error(
                        .sizeMismatch,
                        "\(path): data runs to \(offset + Int64(run.count)) bytes, past its size of \(size)")
                }
                var position = offset
                var used = 0
                while used < run.count {
                    let logical = position / blockSize
                    let within = Int(position % blockSize)
                    let count = min(Int(blockSize) - within, run.count - used)
                    if logical != pending, pending >= 0 {
                        try emit(pending, UnsafeRawBufferPointer(data.block))
                        pending = -1
                    }
                    let piece = UnsafeRawBufferPointer(rebasing: run[used..<used + count])
                    if count == Int(blockSize) {
                        try emit(logical, piece)
                    } else {
                        if pending < 0 {
                            data.clearBlock()
                            pending = logical
                        }
                        UnsafeMutableRawBufferPointer(rebasing: data.block[within..<within + count]).copyMemory(
                            from: piece)
                    }
                    position += Int64(count)
                    used += count
                }
                end = offset + Int64(run.count)
            }
            if pending >= 0 { try emit(pending, UnsafeRawBufferPointer(data.block)) }
        } catch let error as Ext4Error {
            throw error
        } catch {
            throw Ext4Error(.contents, "\(path): cannot read its data: \(error)")
        }
        return extents
    }

    /// The journal (inode 8): contiguous where metadata allows, zero but for its superblock (jbd2,
    /// version 2, clean, every field big-endian; the journal has no checksum features, as mke2fs
    /// 1.47 makes it).
    func makeJournal() throws(Ext4Error) {
        var journal = Ext4Inode(mode: Ext4Inode.regular | 0o600, time: epoch)
        journal.flags = Ext4Inode.extentsFlag
        journal.size = UInt64(geometry.journalBlocks) * UInt64(Ext4Geometry.blockSize)
        for logical in 0..<geometry.journalBlocks {
            Ext4BlockAllocator.append(try allocator.allocate(), logical: UInt32(logical), to: &journal.extents)
        }
        var superblock = [UInt8](repeating: 0, count: Ext4Geometry.blockSize)
        superblock.putBE32(0xC03B_3998, at: 0x00)  // h_magic
        superblock.putBE32(4, at: 0x04)  // h_blocktype: superblock v2
        superblock.putBE32(UInt32(Ext4Geometry.blockSize), at: 0x0C)
        superblock.putBE32(UInt32(geometry.journalBlocks), at: 0x10)  // s_maxlen
        superblock.putBE32(1, at: 0x14)  // s_first
        superblock.putBE32(1, at: 0x18)  // s_sequence
        superblock.put(Self.bytes(of: options.uuid), at: 0x30)
        superblock.putBE32(1, at: 0x40)  // s_nr_users
        guard let first = journal.extents.first else { throw Ext4Error(.invalidGeometry, "the journal is empty") }
        try device.write(superblock, at: first.physical * Int64(Ext4Geometry.blockSize))
        inodes[Int(Self.journalInode) - 1] = journal
    }
}
