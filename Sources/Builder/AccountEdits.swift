import Foundation

/// One file of the target: its bytes, permissions and owner.
package struct TargetFile: Sendable, Equatable {
    package var bytes: [UInt8]
    package var mode: UInt32
    package var uid: UInt32
    package var gid: UInt32

    package init(bytes: [UInt8], mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0) {
        self.bytes = bytes
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }
}

/// What account changes leave in the target: files to write, folders to make, entries of the skeleton
/// folder to copy, each with its mode and owner.
package struct AccountEdits: Sendable, Equatable {
    /// A file written whole (a database, its `-` backup, `/etc/.pwd.lock`, a mail spool).
    package struct File: Sendable, Equatable {
        package var path: String
        package var contents: TargetFile
    }

    /// A folder made (a home, or a missing parent of one).
    package struct Directory: Sendable, Equatable {
        package var path: String
        package var mode: UInt32
        package var uid: UInt32
        package var gid: UInt32
    }

    /// One entry of the skeleton folder copied into a new home.
    package struct Copy: Sendable, Equatable {
        package enum Kind: Sendable, Equatable {
            case file
            case directory
            /// A symbolic link with this target (already moved from the skeleton folder to the home).
            case symlink(String)
        }
        /// The entry in the target (`/etc/skel/.bashrc`).
        package var source: String
        /// Where it goes (`/home/alice/.bashrc`).
        package var destination: String
        package var kind: Kind
        package var mode: UInt32
        package var uid: UInt32
        package var gid: UInt32
    }

    /// Files by path, sorted.
    package var files: [File] = []
    /// Folders in the order they are made (parents first).
    package var directories: [Directory] = []
    /// Skeleton entries in the order they are copied (a folder before its contents).
    package var copies: [Copy] = []
    /// What the tools would print as a warning (a home that already exists is left as it is).
    package var warnings: [String] = []

    /// Carries the edits out in a tree on the host whose root is `root` (as root, for the owners).
    package func apply(to root: String) throws(BuilderError) {
        let manager = FileManager.default
        func owner(_ path: String, _ uid: UInt32, _ gid: UInt32, link: Bool = false) throws(BuilderError) {
            let status = link ? lchown(path, uid, gid) : chown(path, uid, gid)
            guard status == 0 else { throw BuilderError("cannot change the owner of \(path): errno \(errno)") }
        }
        func mode(_ path: String, _ mode: UInt32) throws(BuilderError) {
            guard chmod(path, mode_t(mode)) == 0 else { throw BuilderError("cannot chmod \(path): errno \(errno)") }
        }
        for directory in directories {
            let path = root + directory.path
            if mkdir(path, 0o700) != 0 && errno != EEXIST {
                throw BuilderError("cannot make \(path): errno \(errno)")
            }
            try owner(path, directory.uid, directory.gid)
            try mode(path, directory.mode)
        }
        for copy in copies {
            let path = root + copy.destination
            switch copy.kind {
            case .directory:
                if mkdir(path, 0o700) != 0 && errno != EEXIST {
                    throw BuilderError("cannot make \(path): errno \(errno)")
                }
            case .file:
                guard let data = manager.contents(atPath: root + copy.source),
                    manager.createFile(atPath: path, contents: data)
                else { throw BuilderError("cannot copy \(root + copy.source) to \(path)") }
            case .symlink(let target):
                guard symlink(target, path) == 0 else { throw BuilderError("cannot link \(path): errno \(errno)") }
                try owner(path, copy.uid, copy.gid, link: true)
                continue
            }
            try owner(path, copy.uid, copy.gid)
            try mode(path, copy.mode)
        }
        for file in files {
            let path = root + file.path
            guard manager.createFile(atPath: path, contents: Data(file.contents.bytes)) else {
                throw BuilderError("cannot write \(path)")
            }
            try owner(path, file.contents.uid, file.contents.gid)
            try mode(path, file.contents.mode)
        }
    }
}
