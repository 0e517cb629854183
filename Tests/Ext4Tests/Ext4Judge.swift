import Foundation
import KilnSupport
import Testing

@testable import Ext4

/// A scratch folder with an image in it, and e2fsprogs' tools to judge what the writer made.
struct Ext4Scratch {
    let folder: String
    let image: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-ext4-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        image = "\(folder)/fs.img"
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }

    static let uuid = UUID(uuidString: "6A1E0F3C-2B7D-4C5E-9F10-1234567890AB") ?? UUID()
    static let epoch: Int64 = 1_700_000_000

    static func options(bytesPerInode: Int = 16384) -> Ext4Writer.Options {
        Ext4Writer.Options(uuid: uuid, sourceDateEpoch: epoch, label: "kiln-test", bytesPerInode: bytesPerInode)
    }

    /// Runs a tool; its exit status and what it printed (stdout and stderr).
    static func run(_ arguments: [String]) async throws -> (Bool, String) {
        let (ended, output) = try await Subprocess.output([
            "/bin/sh", "-c", arguments.map(ShellQuote.quote).joined(separator: " ") + " 2>&1",
        ])
        return (ended.succeeded, output)
    }

    /// `e2fsck -fn`: forced, read-only; exit 0 only when it finds nothing to fix.
    func fsck(_ target: String? = nil) async throws -> (Bool, String) {
        try await Self.run(["e2fsck", "-fn", target ?? image])
    }

    func debugfs(_ request: String) async throws -> String {
        try await Self.run(["debugfs", "-R", request, image]).1
    }
}
