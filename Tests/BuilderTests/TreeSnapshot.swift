import Foundation
import Testing

/// Every entry under some folders of a tree: kind, mode, owner and contents (or link target), for
/// comparing what kiln made with what the real tools made.
struct TreeSnapshot: Equatable {
    var entries: [String: String] = [:]

    init(root: String, folders: [String]) {
        for folder in folders {
            add(root: root, path: folder)
            guard let walker = FileManager.default.enumerator(atPath: root + "/" + folder) else { continue }
            while let relative = walker.nextObject() as? String { add(root: root, path: folder + "/" + relative) }
        }
    }

    private mutating func add(root: String, path: String) {
        var status = stat()
        guard lstat(root + "/" + path, &status) == 0 else { return }
        let meta = String(format: "%o %d:%d", status.st_mode & 0o7777, status.st_uid, status.st_gid)
        switch status.st_mode & S_IFMT {
        case S_IFDIR: entries[path] = "directory \(meta)"
        case S_IFLNK:
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)) ?? "?"
            entries[path] = "link \(meta) -> \(target)"
        case S_IFREG:
            let data = FileManager.default.contents(atPath: root + "/" + path) ?? Data()
            entries[path] = "file \(meta)\n" + String(decoding: data, as: UTF8.self)
        default: entries[path] = "other \(meta)"
        }
    }

    /// Records one issue per entry that differs, naming it, with both sides.
    func expectSame(as judge: TreeSnapshot, sourceLocation: SourceLocation = #_sourceLocation) {
        for path in Set(entries.keys).union(judge.entries.keys).sorted() where entries[path] != judge.entries[path] {
            Issue.record(
                "\(path) differs:\n--- kiln:\n\(entries[path] ?? "(absent)")\n--- real tools:\n\(judge.entries[path] ?? "(absent)")",
                sourceLocation: sourceLocation)
        }
    }
}

/// Copies a tree as `cp -a` does (modes, owners and links kept).
func copyTree(_ source: String, to destination: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/cp")
    process.arguments = ["-a", source, destination]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "cp -a \(source) \(destination)")
}
