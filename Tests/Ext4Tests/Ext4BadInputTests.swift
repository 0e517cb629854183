import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// Input that cannot become a file system fails with an error naming it, and leaves no file system.
struct Ext4BadInputTests {
    func failing(_ code: Ext4Error.Code, _ body: (Ext4Writer) throws -> Void) throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 16 << 20, options: Ext4Scratch.options())
        try writer.add(Ext4Entry(path: "etc", kind: .directory, permissions: 0o755))
        let error = #expect(throws: Ext4Error.self) { try body(writer) }
        #expect(error?.code == code, "\(String(describing: error))")
        // The writer refuses to go on, and the region holds no superblock (no ext4 magic at 1080).
        #expect(throws: Ext4Error.self) { try writer.finish() }
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: scratch.image)).readData(ofLength: 2048)
        #expect(head.allSatisfy { $0 == 0 })
    }

    @Test func dotDotInAPathIsRefused() throws {
        try failing(.invalidPath) { try $0.add(Ext4Entry(path: "etc/../../escape", kind: .fifo, permissions: 0o644)) }
        try failing(.invalidPath) { try $0.add(Ext4Entry(path: "..", kind: .directory, permissions: 0o755)) }
        try failing(.invalidPath) { try $0.add(Ext4Entry(path: "/etc/x", kind: .fifo, permissions: 0o644)) }
        try failing(.invalidPath) { try $0.add(Ext4Entry(path: "etc//x", kind: .fifo, permissions: 0o644)) }
        let long = String(repeating: "n", count: 256)
        try failing(.invalidPath) { try $0.add(Ext4Entry(path: long, kind: .fifo, permissions: 0o644)) }
        try failing(.invalidPath) {
            try $0.add(Ext4Entry(path: "etc/link", kind: .hardLink(target: "etc/../x"), permissions: 0))
        }
    }

    @Test func dataPastTheDeclaredSizeIsRefused() throws {
        try failing(.sizeMismatch) { writer in
            var liar = Ext4Bytes([UInt8](repeating: 7, count: 5000))
            try writer.add(
                Ext4Entry(path: "etc/liar", kind: .regularFile(size: 100), permissions: 0o644), contents: &liar)
        }
        try failing(.sizeMismatch) { writer in
            try writer.add(Ext4Entry(path: "etc/negative", kind: .regularFile(size: -1), permissions: 0o644))
        }
    }

    @Test func aFailingSourceIsReportedWithItsCause() throws {
        struct Truncated: Error {}
        struct Failing: Ext4Contents {
            mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
                throw Truncated()
            }
        }
        try failing(.contents) { writer in
            var failing = Failing()
            try writer.add(
                Ext4Entry(path: "etc/cut", kind: .regularFile(size: 10), permissions: 0o644), contents: &failing)
        }
    }

    @Test func contradictoryEntriesAreRefused() throws {
        try failing(.invalidEntry) { try $0.add(Ext4Entry(path: "etc", kind: .fifo, permissions: 0o644)) }
        try failing(.invalidEntry) {
            try $0.add(Ext4Entry(path: "etc/passwd", kind: .hardLink(target: "etc/shadow"), permissions: 0))
        }
        try failing(.invalidEntry) {
            try $0.add(Ext4Entry(path: "etc/x", kind: .hardLink(target: "etc"), permissions: 0))
        }
        try failing(.invalidEntry) { writer in
            try writer.add(Ext4Entry(path: "etc/fifo", kind: .fifo, permissions: 0o644))
            try writer.add(Ext4Entry(path: "etc/fifo/below", kind: .fifo, permissions: 0o644))
        }
        try failing(.invalidEntry) {
            try $0.add(Ext4Entry(path: "etc/empty", kind: .symlink(target: ""), permissions: 0o777))
        }
        try failing(.invalidEntry) {
            try $0.add(Ext4Entry(path: "etc/big", kind: .regularFile(size: 10), permissions: 0))
        }
    }

    @Test func aFileSystemTooSmallForItsDataSaysSo() throws {
        try failing(.noSpace) { writer in
            var pattern = Ext4Pattern(size: 32 << 20)
            try writer.add(
                Ext4Entry(path: "etc/big", kind: .regularFile(size: 32 << 20), permissions: 0o644), contents: &pattern)
        }
        #expect(throws: Ext4Error.self) {
            try Ext4Writer(path: "/nonexistent/dir/fs.img", size: 16 << 20, options: Ext4Scratch.options())
        }
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        #expect(throws: Ext4Error.self) {
            try Ext4Writer(path: scratch.image, size: 1 << 20, options: Ext4Scratch.options())
        }
    }
}
