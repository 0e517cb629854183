/// One file, directory or other object to put into the file system, as a tar header describes it.
package struct Ext4Entry: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// A regular file of `size` bytes; its data comes from an `Ext4Contents`.
        case regularFile(size: Int64)
        case directory
        case symlink(target: String)
        /// Another name for an earlier entry that is not a directory, named by its path.
        case hardLink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
        case socket
    }

    /// Relative to the file system's root, components separated by "/"; "" is the root itself.
    package var path: String
    package var kind: Kind
    /// Permission bits, including setuid, setgid and sticky (the low 12 bits of `st_mode`).
    package var permissions: UInt16
    package var uid: UInt32
    package var gid: UInt32
    /// Seconds since the Unix epoch; clamped to the writer's `sourceDateEpoch`.
    package var modificationTime: Int64
    /// Extended attributes, values as the VFS hands them (`getxattr`, tar's `SCHILY.xattr`): POSIX ACLs
    /// in the VFS format, which the writer turns into ext4's own.
    package var extendedAttributes: [Ext4ExtendedAttribute]

    package init(
        path: String, kind: Kind, permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, modificationTime: Int64 = 0,
        extendedAttributes: [Ext4ExtendedAttribute] = []
    ) {
        self.path = path
        self.kind = kind
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime
        self.extendedAttributes = extendedAttributes
    }
}

/// One extended attribute: its full name (`user.comment`, `security.capability`) and its value.
package struct Ext4ExtendedAttribute: Sendable, Equatable {
    package var name: String
    package var value: [UInt8]

    package init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}
