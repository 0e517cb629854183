// kiln-ext4-bench: writes an ext4 file system with kiln's writer from a folder (as mke2fs -d
// reads one) or from a tar streamed through libarchive (as the build pipeline will), so that
// Benchmarks/ext4.sh can time it against mke2fs -d on the same tree.
import Ext4
import Foundation
import KilnArchive

let arguments = CommandLine.arguments
guard arguments.count == 5, ["tree", "tar"].contains(arguments[1]), let megabytes = Int64(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: kiln-ext4-bench tree|tar SOURCE IMAGE SIZE_MIB\n".utf8))
    exit(2)
}
let epoch = Int64(ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] ?? "") ?? 1_700_000_000
let uuid = UUID(uuidString: "6A1E0F3C-2B7D-4C5E-9F10-1234567890AB") ?? UUID()

/// A tar entry's data blocks as libarchive hands them out, with their offsets: a sparse entry's
/// gaps become holes.
struct ArchiveContents: Ext4Contents {
    let reader: ArchiveReader

    mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        var failure: (any Error)?
        do {
            try reader.readDataBlocks { (offset, block) throws(ArchiveError) in
                do {
                    try body(offset, block)
                } catch {
                    failure = error
                    throw ArchiveError(reader.name, "stopped by the writer")
                }
            }
        } catch {
            throw failure ?? error
        }
    }
}

func entry(_ header: ArchiveEntry) -> Ext4Entry {
    let kind: Ext4Entry.Kind
    switch header.kind {
    case .file: kind = .regularFile(size: header.size)
    case .directory: kind = .directory
    case .symlink(let target): kind = .symlink(target: target)
    case .hardlink(let target): kind = .hardLink(target: target)
    case .characterDevice(let major, let minor): kind = .characterDevice(major: major, minor: minor)
    case .blockDevice(let major, let minor): kind = .blockDevice(major: major, minor: minor)
    case .fifo: kind = .fifo
    }
    return Ext4Entry(
        path: header.path, kind: kind, permissions: UInt16(header.permissions & 0o7777),
        uid: UInt32(truncatingIfNeeded: header.uid), gid: UInt32(truncatingIfNeeded: header.gid),
        modificationTime: header.modificationTime,
        extendedAttributes: header.extendedAttributes.map { Ext4ExtendedAttribute(name: $0.name, value: $0.value) })
}

do {
    let writer = try Ext4Writer(
        path: arguments[3], size: megabytes << 20, options: Ext4Writer.Options(uuid: uuid, sourceDateEpoch: epoch))
    if arguments[1] == "tree" {
        try writer.addTree(arguments[2])
    } else {
        let reader = try ArchiveReader(path: arguments[2])
        while let header = try reader.next() {
            if case .file = header.kind {
                var contents = ArchiveContents(reader: reader)
                try writer.add(entry(header), contents: &contents)
            } else {
                try writer.add(entry(header))
            }
        }
    }
    let summary = try writer.finish()
    print("\(summary.blocks - summary.freeBlocks) blocks and \(summary.inodes - summary.freeInodes) inodes in use")
} catch {
    FileHandle.standardError.write(Data("kiln-ext4-bench: \(error)\n".utf8))
    exit(1)
}
