import Foundation
import KilnArchive
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// What the builder guest runs: a shell script and the files it works on.
package struct GuestJob: Sendable {
    package struct File: Sendable {
        package enum Source: Sendable {
            case bytes([UInt8])
            /// A file on the host, streamed into the input disk (a root file system tar, say).
            case hostFile(String)
        }

        /// Relative to `/job` in the guest.
        package var path: String
        package var source: Source
        package var permissions: UInt32
        /// Placed on the input disk after the cpio stream instead of in it, and read in the guest
        /// with `kiln-extent NAME` (to a pipe): a large file (a root file system tar) never has to
        /// fit in the guest's memory. `NAME` is `path`.
        package var extent: Bool

        package init(path: String, source: Source, permissions: UInt32 = 0o644, extent: Bool = false) {
            self.path = path
            self.source = source
            self.permissions = permissions
            self.extent = extent
        }
    }

    /// Becomes `/job/run.sh`, run by busybox `sh` with `/job` as its directory, `KILN_TARGET` and
    /// `KILN_INPUT` naming the disks. It reports with `kiln-event step|progress|info|result TEXT`;
    /// its exit status is the job's. The recipe's programs are called as `/kiln/bin/NAME`
    /// (busybox would run its own applet for a bare `mke2fs` or `mkfs.vfat`).
    package var script: String
    package var files: [File]

    package init(script: String, files: [File] = []) {
        self.script = script
        self.files = files
    }
}

/// The read-only second disk: a raw image that starts with one uncompressed newc cpio stream,
/// which busybox's `cpio -i` reads straight from the block device into `/job`, followed by the
/// job's extent files, each at a MiB boundary. Nothing has to be mounted, and the guest spends no
/// CPU on decompression.
///
/// The cpio holds `kiln-extents`, one line per extent file: offset and size in bytes, each right-
/// aligned in 20 columns (fixed width, so that the cpio's size does not depend on them), then the
/// name. The offsets are absolute on the disk.
enum InputDisk {
    static let extentAlignment = 1 << 20
    static let manifestName = "kiln-extents"

    static func write(_ job: GuestJob, to path: String, modificationTime: Int = 0) throws(BuildVMError) {
        var files: [(String, GuestJob.File)] = job.files.map { (ArchiveEntry.normalize($0.path), $0) }
        files.append(
            ("run.sh", GuestJob.File(path: "run.sh", source: .bytes(Array(job.script.utf8)), permissions: 0o755)))
        var seen: Set<String> = [manifestName]
        for (name, _) in files where !seen.insert(name).inserted {
            throw BuildVMError(.io, "the job names \(name) twice (or uses the reserved name \(manifestName))")
        }
        let extents = files.filter { $0.1.extent }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        var sizes: [Int64] = []
        for (_, file) in extents { sizes.append(try size(of: file.source)) }

        // Once with zero offsets to learn where the extents start, then with the real ones: the
        // fixed-width manifest keeps the cpio the same size.
        var offsets = [Int64](repeating: 0, count: extents.count)
        let firstSize = try writeArchive(
            files, extents: extents, offsets: offsets, sizes: sizes, path, modificationTime)
        var next = align(firstSize)
        for index in extents.indices {
            offsets[index] = next
            next = align(next + sizes[index])
        }
        if !extents.isEmpty {
            let secondSize = try writeArchive(
                files, extents: extents, offsets: offsets, sizes: sizes, path, modificationTime)
            guard secondSize == firstSize else {
                throw BuildVMError(.io, "\(path): the input disk's cpio changed size between passes")
            }
        }
        try appendExtents(extents.map(\.1.source), at: offsets, to: path)
        // swift-system resizes only an open file.
        guard truncate(path, off_t(align(next == 0 ? firstSize : next))) == 0 else {
            throw BuildVMError(.io, "cannot pad \(path): \(Errno(rawValue: errno))")
        }
    }

    private static func align(_ value: Int64) -> Int64 {
        let unit = Int64(extentAlignment)
        return (value + unit - 1) / unit * unit
    }

    private static func size(of source: GuestJob.File.Source) throws(BuildVMError) -> Int64 {
        switch source {
        case .bytes(let bytes): return Int64(bytes.count)
        case .hostFile(let hostPath):
            do {
                return try FilePath(hostPath).stat().size
            } catch {
                throw BuildVMError(.io, "cannot read \(hostPath): \(error)")
            }
        }
    }

    /// Writes the cpio stream; returns its size.
    private static func writeArchive(
        _ files: [(String, GuestJob.File)], extents: [(String, GuestJob.File)], offsets: [Int64], sizes: [Int64],
        _ path: String, _ modificationTime: Int
    ) throws(BuildVMError) -> Int64 {
        var entries = files.filter { !$0.1.extent }
        if !extents.isEmpty {
            let manifest = extents.indices.map { index in
                Self.column(offsets[index]) + " " + Self.column(sizes[index]) + " " + extents[index].0 + "\n"
            }.joined()
            entries.append((manifestName, GuestJob.File(path: manifestName, source: .bytes(Array(manifest.utf8)))))
        }
        entries.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }

        let writer = try CpioWriter(path: path, compression: .none, modificationTime: modificationTime)
        var directories: Set<String> = []
        for (name, file) in entries {
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
        do {
            return try FilePath(path).stat().size
        } catch {
            throw BuildVMError(.io, "cannot stat \(path)")
        }
    }

    private static func column(_ value: Int64) -> String {
        let digits = String(value)
        return String(repeating: " ", count: max(0, 20 - digits.count)) + digits
    }

    private static func appendExtents(
        _ sources: [GuestJob.File.Source], at offsets: [Int64], to path: String
    ) throws(BuildVMError) {
        guard !sources.isEmpty else { return }
        let out: FileDescriptor
        do {
            out = try FileDescriptor.open(FilePath(path), .writeOnly, options: .closeOnExec)
        } catch {
            throw BuildVMError(.io, "cannot write \(path): \(error)")
        }
        defer { try? out.close() }
        for (source, offset) in zip(sources, offsets) {
            switch source {
            case .bytes(let bytes):
                try writeAll(out, bytes[...], at: offset, path)
            case .hostFile(let hostPath):
                let input: FileDescriptor
                do {
                    input = try FileDescriptor.open(FilePath(hostPath), .readOnly, options: .closeOnExec)
                } catch {
                    throw BuildVMError(.io, "cannot read \(hostPath): \(error)")
                }
                defer { try? input.close() }
                var chunk = [UInt8](repeating: 0, count: 1 << 20)
                var position = offset
                while true {
                    let count: Int
                    do {
                        count = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
                    } catch {
                        throw BuildVMError(.io, "cannot read \(hostPath): \(error)")
                    }
                    if count == 0 { break }
                    try writeAll(out, chunk[0..<count], at: position, path)
                    position += Int64(count)
                }
            }
        }
    }

    private static func writeAll(_ fd: FileDescriptor, _ bytes: ArraySlice<UInt8>, at offset: Int64, _ path: String)
        throws(BuildVMError)
    {
        do {
            try fd.writeAll(toAbsoluteOffset: offset, bytes)
        } catch {
            throw BuildVMError(.io, "cannot write \(path): \(error)")
        }
    }
}
