import Foundation
import KilnTestSupport
import Testing

/// `kiln cache`: list with sizes, prune --keep N, clean; always in a cache of the test's own.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"))
struct CacheCommandTests {
    private func kiln(_ arguments: [String], cache: String) throws -> (Int32, String, String) {
        let process = KilnProgram.process(arguments)
        var environment = ProcessInfo.processInfo.environment
        environment["KILN_CACHE"] = cache
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self)
        )
    }

    private func put(_ path: String, bytes: Int, age: TimeInterval) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(repeating: 1, count: bytes).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
    }

    @Test func listPruneClean() throws {
        let cache = NSTemporaryDirectory() + "kiln-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        try put("\(cache)/builder/aaaa/vmlinuz", bytes: 1 << 20, age: 3000)
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-3000)], ofItemAtPath: "\(cache)/builder/aaaa")
        try put("\(cache)/builder/bbbb/vmlinuz", bytes: 1 << 20, age: 10)
        try put("\(cache)/base/k1.tar", bytes: 2 << 20, age: 5000)
        try put("\(cache)/base/k1.initramfs.tar", bytes: 1 << 20, age: 5000)
        try put("\(cache)/base/k2.tar", bytes: 2 << 20, age: 20)
        try put("\(cache)/debs/sha256/ab/abcd", bytes: 3 << 20, age: 9000)

        let (listed, out, err) = try kiln(["cache"], cache: cache)
        #expect(listed == 0, "\(err)")
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("\(cache): 1") == true, "\(out)")
        for name in ["builder/aaaa", "builder/bbbb", "base/k1", "base/k2", "debs"] {
            #expect(lines.contains { $0.hasPrefix("  \(name) ") }, "\(name) not listed:\n\(out)")
        }
        #expect(lines.contains { $0.hasPrefix("  base/k1 ") && $0.contains("3.0 MiB") }, "\(out)")

        let (pruned, pruneOut, pruneErr) = try kiln(["cache", "prune", "--keep", "1", "--json"], cache: cache)
        #expect(pruned == 0)
        #expect(pruneErr.contains("removed 2 cache entries"), "\(pruneErr)")
        let pruneResult = try JSONSerialization.jsonObject(with: Data(pruneOut.utf8)) as? [String: Any]
        #expect(pruneResult?["event"] as? String == "result" && pruneResult?["removed"] as? Int == 2, "\(pruneOut)")
        #expect(pruneResult?["bytes_freed"] as? Int ?? 0 >= 4 << 20, "\(pruneOut)")
        let files = FileManager.default
        #expect(!files.fileExists(atPath: "\(cache)/builder/aaaa") && files.fileExists(atPath: "\(cache)/builder/bbbb"))
        #expect(!files.fileExists(atPath: "\(cache)/base/k1.tar"))
        #expect(!files.fileExists(atPath: "\(cache)/base/k1.initramfs.tar"))
        #expect(files.fileExists(atPath: "\(cache)/base/k2.tar"))
        #expect(files.fileExists(atPath: "\(cache)/debs/sha256/ab/abcd"), "prune leaves downloaded packages")

        let (cleaned, cleanOut, _) = try kiln(["cache", "clean", "--json"], cache: cache)
        #expect(cleaned == 0)
        let cleanResult = try JSONSerialization.jsonObject(with: Data(cleanOut.utf8)) as? [String: Any]
        #expect(cleanResult?["removed"] as? Int == 3, "\(cleanOut)")
        #expect((try? files.contentsOfDirectory(atPath: cache)) == [])
    }
}
