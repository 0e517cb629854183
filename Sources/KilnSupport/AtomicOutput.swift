import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An output file written under a temporary name beside its destination and renamed into place only
/// when complete, so that a failed or interrupted command never leaves a half-written file.
package final class AtomicOutput: @unchecked Sendable {
    // @unchecked: one owner writes; `committed` is only read and set by that owner.

    package let destination: String
    package let temporaryPath: String
    private var committed = false

    /// Creates the temporary file (mode 0644) beside `destination`.
    package init(_ destination: String) throws(OutputError) {
        self.destination = destination
        let url = URL(fileURLWithPath: destination)
        let dir = url.deletingLastPathComponent().path
        let prefix = ".\(url.lastPathComponent).kiln-"
        Self.removeLeftovers(in: dir, prefix: prefix)
        temporaryPath = "\(dir)/\(prefix)\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let fd = try FileDescriptor.open(
                FilePath(temporaryPath), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644))
            try? fd.close()
        } catch {
            throw OutputError(path: destination, reason: "\(error)")
        }
        AtomicOutput.registry.add(temporaryPath)
    }

    /// Moves the finished file into place.
    package func commit() throws(OutputError) {
        guard rename(temporaryPath, destination) == 0 else {
            throw OutputError(path: destination, reason: Errno(rawValue: errno).description)
        }
        committed = true
        AtomicOutput.registry.remove(temporaryPath)
    }

    /// Removes the temporary file unless it was committed.
    package func discard() {
        if !committed {
            unlink(temporaryPath)
            AtomicOutput.registry.remove(temporaryPath)
        }
    }

    deinit { discard() }

    /// Writes `data` to `path` atomically.
    package static func write(_ data: Data, to path: String) throws(OutputError) {
        let output = try AtomicOutput(path)
        do {
            try data.write(to: URL(fileURLWithPath: output.temporaryPath))
        } catch {
            output.discard()
            throw OutputError(path: path, reason: "\(error.localizedDescription)")
        }
        try output.commit()
    }

    /// Writes `text` to `path` atomically.
    package static func write(_ text: String, to path: String) throws(OutputError) {
        try write(Data(text.utf8), to: path)
    }

    /// Removes what a kiln that was killed (`kill -9`, a power cut) left in `dir`: the entries named
    /// `PREFIX<pid>-<n>` whose process no longer runs. A running kiln's, and any other name, stay.
    package static func removeLeftovers(in dir: String, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0,
                UInt32(rest[rest.index(after: dash)...]) != nil
            else { continue }
            // kill(pid, 0) fails with ESRCH only when no such process exists.
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: "\(dir)/\(name)")
        }
    }

    /// Removes every temporary file not yet committed, and every scratch directory still
    /// registered; called when kiln is interrupted.
    package static func discardAll() { registry.removeAll() }

    /// A work directory that an interruption removes with everything in it.
    package static func registerScratchDirectory(_ path: String) { registry.addDirectory(path) }

    /// The work directory was removed, or is to be kept.
    package static func unregisterScratchDirectory(_ path: String) { registry.removeDirectory(path) }

    private static let registry = Registry()

    private final class Registry: Sendable {
        private let state = Mutex<(paths: Set<String>, directories: Set<String>)>(([], []))
        func add(_ path: String) { state.withLock { _ = $0.paths.insert(path) } }
        func remove(_ path: String) { state.withLock { _ = $0.paths.remove(path) } }
        func addDirectory(_ path: String) { state.withLock { _ = $0.directories.insert(path) } }
        func removeDirectory(_ path: String) { state.withLock { _ = $0.directories.remove(path) } }
        func removeAll() {
            state.withLock { state in
                for path in state.paths { unlink(path) }
                state.paths.removeAll()
                for dir in state.directories { try? FileManager.default.removeItem(atPath: dir) }
                state.directories.removeAll()
            }
        }
    }
}

/// An output that could not be written.
package struct OutputError: Error, CustomStringConvertible {
    package var path: String
    package var reason: String

    package init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    package var description: String { "cannot write \(path): \(reason)" }
}
