/// One entry's header, as kiln needs it from tar, cpio and `ar` archives.
package struct ArchiveEntry: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case file
        case directory
        case symlink(target: String)
        /// A hard link to an earlier entry, named by its normalized path.
        case hardlink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
    }

    /// Normalized: no leading "./" or "/", no trailing "/"; "" is the root directory.
    package var path: String
    package var kind: Kind
    /// Permission bits, including setuid, setgid and sticky.
    package var permissions: UInt32
    package var uid: Int64
    package var gid: Int64
    /// Owner names, when the archive carries them (tar does, cpio does not).
    package var userName: String?
    package var groupName: String?
    /// Seconds since the epoch.
    package var modificationTime: Int64
    /// Bytes of data that follow the header (0 for everything but files).
    package var size: Int64
    /// Extended attributes (pax `SCHILY.xattr` and `LIBARCHIVE.xattr` records), in archive order,
    /// values as `getxattr` returns them: file capabilities, POSIX ACLs in the VFS form, `user.*`.
    package var extendedAttributes: [ExtendedAttribute]

    package struct ExtendedAttribute: Sendable, Equatable {
        package var name: String
        package var value: [UInt8]

        package init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    package init(
        path: String, kind: Kind, permissions: UInt32, uid: Int64 = 0, gid: Int64 = 0, userName: String? = nil,
        groupName: String? = nil, modificationTime: Int64 = 0, size: Int64 = 0,
        extendedAttributes: [ExtendedAttribute] = []
    ) {
        self.path = path
        self.kind = kind
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.modificationTime = modificationTime
        self.size = size
        self.extendedAttributes = extendedAttributes
    }

    /// "./usr/bin/" and "/usr/bin" both become "usr/bin"; "." and "./" become "".
    package static func normalize(_ path: String) -> String {
        var text = Substring(path)
        while text.hasPrefix("./") { text = text.dropFirst(2) }
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        return text == "." ? "" : String(text)
    }
}

/// The `st_mode` type bits (POSIX), spelled out because libarchive's `AE_IF*` macros are casts that
/// Swift does not import.
enum FileType {
    static let mask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let characterDevice: UInt32 = 0o020000
    static let blockDevice: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
}
