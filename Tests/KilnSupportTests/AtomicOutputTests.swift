import Foundation
import KilnTestSupport
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

/// What a killed kiln left (its hidden temporary files) goes when the next output of that name is made;
/// a running kiln's stays.
@Suite struct LeftoverTests {
    @Test func deadProcessesTemporaryFilesAreRemoved() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-left-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = try ProcessTable.endedPID()
        let mine = getpid()
        let names = [
            ".image.raw.kiln-\(dead)-17", ".image.raw.kiln-\(mine)-18", ".other.raw.kiln-\(dead)-19",
            ".image.raw.kiln-notapid-20", "image.raw.keep",
        ]
        for name in names { #expect(FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: nil)) }
        let output = try AtomicOutput("\(dir)/image.raw")
        try output.commit()
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(!left.contains(".image.raw.kiln-\(dead)-17"))
        #expect(left.isSuperset(of: names.dropFirst()), "\(left)")
        #expect(left.contains("image.raw"))
    }
}
