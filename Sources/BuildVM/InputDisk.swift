import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the builder guest runs: a shell script and the files it works on.
public struct GuestJob: Sendable {
    public struct File: Sendable {
        public enum Source: Sendable {
            case bytes([UInt8])
            /// A file on the host, streamed into the input disk (a root file system tar, say).
            case hostFile(String)
        }

        /// Relative to `/job` in the guest.
        public var path: String
        public var source: Source
        public var permissions: UInt32

        public init(path: String, source: Source, permissions: UInt32 = 0o644) {
            self.path = path
            self.source = source
            self.permissions = permissions
        }
    }

    /// Becomes `/job/run.sh`, run by busybox `sh` with `/job` as its directory, `KILN_TARGET` and
    /// `KILN_INPUT` naming the disks. It reports with `kiln-event step|progress|info|result TEXT`;
    /// its exit status is the job's. The recipe's programs are called as `/kiln/bin/NAME`
    /// (busybox would run its own applet for a bare `mke2fs` or `mkfs.vfat`).
    public var script: String
    public var files: [File]

    public init(script: String, files: [File] = []) {
        self.script = script
        self.files = files
    }
}

/// The read-only second disk: a raw image holding one uncompressed newc cpio stream, which
/// busybox's `cpio -i` reads straight from the block device. Nothing has to be mounted, and the
/// guest spends no CPU on decompression.
enum InputDisk {
    /// Padded to a whole number of these, so that every byte is reachable through the block device.
    static let alignment = 4096

    static func write(_ job: GuestJob, to path: String, modificationTime: Int = 0) throws(BuildVMError) {
        var tree: [(String, GuestJob.File)] = job.files.map { (ArchiveReader.normalize($0.path), $0) }
        tree.append(
            ("run.sh", GuestJob.File(path: "run.sh", source: .bytes(Array(job.script.utf8)), permissions: 0o755)))
        tree.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        var seen: Set<String> = []
        for (name, _) in tree where !seen.insert(name).inserted {
            throw BuildVMError(.io, "the job names \(name) twice")
        }

        let writer = try CpioWriter(path: path, compression: .none, modificationTime: modificationTime)
        var directories: Set<String> = []
        for (name, file) in tree {
            var parents: [String] = []
            var parent = FileTree.parent(of: name)
            while let dir = parent, !directories.contains(dir) {
                parents.append(dir)
                directories.insert(dir)
                parent = FileTree.parent(of: dir)
            }
            for dir in parents.reversed() { try writer.addDirectory(dir) }
            switch file.source {
            case .bytes(let bytes):
                try writer.addFile(name, permissions: file.permissions, contents: bytes)
            case .hostFile(let hostPath):
                try writer.addFile(name, permissions: file.permissions, streamingFrom: hostPath)
            }
        }
        try writer.finish()
        try pad(path)
    }

    private static func pad(_ path: String) throws(BuildVMError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw BuildVMError(.io, "cannot stat \(path)") }
        let size = Int(info.st_size)
        let padded = (size + alignment - 1) / alignment * alignment
        guard truncate(path, off_t(padded)) == 0 else {
            throw BuildVMError(.io, "cannot pad \(path): \(String(cString: strerror(errno)))")
        }
    }
}
