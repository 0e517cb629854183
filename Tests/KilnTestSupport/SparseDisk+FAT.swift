import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The judges of a FAT file system in a region of a disk: dosfstools' fsck.fat, mtools, blkid.
extension SparseDisk {
    /// `length` bytes at `offset` copied into a sparse file of their own (`dd conv=sparse`), for the
    /// tools that read a whole file (fsck.fat).
    package func extract(_ offset: UInt64, _ length: UInt64, to path: String) async throws -> SparseDisk {
        let mib: UInt64 = 1 << 20
        precondition(offset % mib == 0 && length % mib == 0, "extract whole MiB")
        let (status, output) = try await Subprocess.output([
            "dd", "if=\(self.path)", "of=\(path)", "bs=1M", "skip=\(offset / mib)", "count=\(length / mib)",
            "conv=sparse", "status=none",
        ])
        guard status == .exited(0) else { throw ToolFailure(command: "dd of=\(path)", output: output) }
        // conv=sparse leaves a trailing hole unwritten: give the file its size.
        guard truncate(path, off_t(length)) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return SparseDisk(path)
    }

    /// `fsck.fat -n` (check only) and `-v` when asked: whether it found nothing to repair, and what it
    /// said. Clean means exit status 0 and no line beyond the version, the verbose report and the summary.
    package func fsckFAT(verbose: Bool = false) async throws -> (clean: Bool, output: String) {
        let (status, output) = try await Subprocess.output(["fsck.fat", "-n"] + (verbose ? ["-v"] : []) + [path])
        let lines = output.split(separator: "\n")
        let summary = lines.last?.hasPrefix("\(path): ") == true && lines.last?.contains(" clusters") == true
        let warnings = lines.filter {
            $0.contains("differ") || $0.contains("Dirty") || $0.contains("corrupt") || $0.contains("?")
                || $0.contains("Free cluster summary")
        }
        return (status == .exited(0) && summary && warnings.isEmpty, output)
    }

    /// `blkid -p` (low-level probing) of `length` bytes at `offset`: its tags, `TYPE`, `UUID`, `LABEL`...
    package func blkid(_ offset: UInt64, _ length: UInt64) async throws -> [String: String] {
        let (status, output) = try await Subprocess.output([
            "blkid", "-p", "-o", "export", "-O", "\(offset)", "-S", "\(length)", path,
        ])
        guard status == .exited(0) else { throw ToolFailure(command: "blkid -p \(path)", output: output) }
        var tags: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { tags[String(parts[0])] = String(parts[1]) }
        }
        return tags
    }

    /// An mtools command (`mcopy`, `mdir`, `mmd`...) on the FAT file system at `offset`, as
    /// `-i DISK@@OFFSET`; throws with its output when it fails.
    @discardableResult
    package func mtools(_ command: String, offset: UInt64, _ arguments: [String]) async throws -> String {
        let (status, output) = try await Subprocess.output([command, "-i", "\(path)@@\(offset)"] + arguments)
        guard status == .exited(0) else { throw ToolFailure(command: "\(command) \(arguments)", output: output) }
        return output
    }
}
