import Foundation
import Testing

@testable import KilnSupport

@Suite struct AtomicOutputTests {
    private func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    @Test func nothingAppearsUntilCommit() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let output = try AtomicOutput("\(dir)/image.raw")
        try Data("half".utf8).write(to: URL(fileURLWithPath: output.temporaryPath))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/image.raw"))
        try output.commit()
        #expect(try String(contentsOfFile: "\(dir)/image.raw", encoding: .utf8) == "half")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["image.raw"])
    }

    @Test func discardLeavesNothing() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let output = try AtomicOutput("\(dir)/out.ks")
            try Data("partial".utf8).write(to: URL(fileURLWithPath: output.temporaryPath))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func unwritableDirectoryIsAnError() {
        #expect(throws: OutputError.self) { try AtomicOutput.write("x", to: "/nonexistent-kiln-dir/out") }
    }
}
