#if canImport(Glibc)
    import Glibc
#endif

/// One file, directory or other object to put into the file system, as a tar header describes it.
public struct Ext4Entry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
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
    public var path: String
    public var kind: Kind
    /// Permission bits, including setuid, setgid and sticky (the low 12 bits of `st_mode`).
    public var permissions: UInt16
    public var uid: UInt32
    public var gid: UInt32
    /// Seconds since the Unix epoch; clamped to the writer's `sourceDateEpoch`.
    public var modificationTime: Int64
    /// Extended attributes, values as the VFS hands them (`getxattr`, tar's `SCHILY.xattr`): POSIX ACLs
    /// in the VFS format, which the writer turns into ext4's own.
    public var extendedAttributes: [Ext4ExtendedAttribute]

    public init(
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
public struct Ext4ExtendedAttribute: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// The bytes of a regular file, handed over in runs so that a file never has to be whole in memory.
public protocol Ext4Contents {
    /// Calls `body` with each run of the file's bytes and the offset in the file where it starts, in
    /// increasing order of offset; what no run covers is a hole (libarchive's sparse blocks map here).
    mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws
}

/// A file's bytes held in memory.
public struct Ext4Bytes: Ext4Contents {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withUnsafeBytes { try body(0, $0) }
    }
}

extension Ext4Bytes {
    /// Byte order of names (`memcmp`, then the shorter first): generic
    /// `lexicographicallyPrecedes` dominated a debug build's run on a 200,000-entry tree.
    static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let common = min(a.count, b.count)
        let order = a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                guard let x = a.baseAddress, let y = b.baseAddress, common > 0 else { return Int32(0) }
                return memcmp(x, y, common)
            }
        }
        return order != 0 ? order < 0 : a.count < b.count
    }
}
