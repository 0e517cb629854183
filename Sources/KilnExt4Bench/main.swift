// kiln-ext4-bench: writes an ext4 file system with kiln's writer from a folder (as mke2fs -d
// reads one) or from a tar streamed through libarchive (as the build pipeline will), so that
// Benchmarks/ext4.sh can time it against mke2fs -d on the same tree.
import Ext4
import Ext4Archive
import Foundation
import KilnArchive

let arguments = CommandLine.arguments
guard arguments.count == 5, ["tree", "tar"].contains(arguments[1]), let megabytes = Int64(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: kiln-ext4-bench tree|tar SOURCE IMAGE SIZE_MIB\n".utf8))
    exit(2)
}
let epoch = Int64(ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] ?? "") ?? 1_700_000_000
let uuid = UUID(uuidString: "6A1E0F3C-2B7D-4C5E-9F10-1234567890AB") ?? UUID()

do {
    let writer = try Ext4Writer(
        path: arguments[3], size: megabytes << 20, options: Ext4Writer.Options(uuid: uuid, sourceDateEpoch: epoch))
    if arguments[1] == "tree" {
        try writer.addTree(arguments[2])
    } else {
        try writer.addArchive(try ArchiveReader(path: arguments[2]))
    }
    let summary = try writer.finish()
    print("\(summary.blocks - summary.freeBlocks) blocks and \(summary.inodes - summary.freeInodes) inodes in use")
} catch {
    FileHandle.standardError.write(Data("kiln-ext4-bench: \(error)\n".utf8))
    exit(1)
}
