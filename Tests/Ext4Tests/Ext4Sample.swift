@testable import Ext4

/// A small tree with one of each kind of entry, and the bytes of its files.
enum Ext4Sample {
    static let hostname = Array("lab-07\n".utf8)
    /// Three and a bit blocks that are not zero anywhere.
    static let tool = (0..<13_000).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
    static let longTarget = String(repeating: "deep/", count: 20) + "target"

    static func addEveryKind(to writer: Ext4Writer) throws {
        try writer.add(Ext4Entry(path: "", kind: .directory, permissions: 0o755, modificationTime: 1_600_000_000))
        try writer.add(Ext4Entry(path: "etc", kind: .directory, permissions: 0o755, modificationTime: 1_600_000_000))
        var hostname = Ext4Bytes(Self.hostname)
        try writer.add(
            Ext4Entry(
                path: "etc/hostname", kind: .regularFile(size: 7), permissions: 0o644, modificationTime: 1_600_000_001),
            contents: &hostname)
        // usr and usr/bin come implicitly, before usr/bin is named.
        var tool = Ext4Bytes(Self.tool)
        try writer.add(
            Ext4Entry(path: "usr/bin/tool", kind: .regularFile(size: 13_000), permissions: 0o755), contents: &tool)
        try writer.add(Ext4Entry(path: "usr/bin", kind: .directory, permissions: 0o750, uid: 0, gid: 50))
        try writer.add(Ext4Entry(path: "usr/bin/tool2", kind: .hardLink(target: "usr/bin/tool"), permissions: 0))
        try writer.add(Ext4Entry(path: "usr/bin/fast", kind: .symlink(target: "tool"), permissions: 0o777))
        try writer.add(Ext4Entry(path: "usr/bin/slow", kind: .symlink(target: longTarget), permissions: 0o777))
        var su = Ext4Bytes(Array("#!/bin/sh\n".utf8))
        try writer.add(Ext4Entry(path: "usr/bin/su", kind: .regularFile(size: 10), permissions: 0o4755), contents: &su)
        try writer.add(Ext4Entry(path: "dev/null", kind: .characterDevice(major: 1, minor: 3), permissions: 0o666))
        try writer.add(Ext4Entry(path: "dev/sda", kind: .blockDevice(major: 8, minor: 0), permissions: 0o660, gid: 6))
        try writer.add(
            Ext4Entry(path: "dev/big", kind: .characterDevice(major: 300, minor: 70_000), permissions: 0o600))
        try writer.add(Ext4Entry(path: "run/initctl", kind: .fifo, permissions: 0o600))
        try writer.add(Ext4Entry(path: "run/socket", kind: .socket, permissions: 0o755))
        try writer.add(Ext4Entry(path: "tmp", kind: .directory, permissions: 0o1777))
        try writer.add(
            Ext4Entry(
                path: "home/ops", kind: .directory, permissions: 0o700, uid: 100_000, gid: 100_001,
                modificationTime: 1_650_000_000))
        var notes = Ext4Bytes(Array("from the future\n".utf8))
        try writer.add(
            Ext4Entry(
                path: "home/ops/notes", kind: .regularFile(size: 16), permissions: 0o600, uid: 100_000, gid: 100_001,
                modificationTime: 2_000_000_000),
            contents: &notes)
        var sparse = Ext4Runs(runs: [
            (0, [UInt8](repeating: 1, count: 100)),
            (8192, [UInt8](repeating: 0, count: 8192)),  // zeros written: a hole all the same
            (512 * 1024, [UInt8](repeating: 2, count: 5000)),
        ])
        try writer.add(
            Ext4Entry(path: "var/lib/sparse", kind: .regularFile(size: 1 << 20), permissions: 0o644), contents: &sparse)
        try writer.add(Ext4Entry(path: "var/empty", kind: .regularFile(size: 0), permissions: 0o644))
    }

    /// The sparse file's bytes as a reader sees them.
    static var sparseBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        bytes.replaceSubrange(0..<100, with: [UInt8](repeating: 1, count: 100))
        bytes.replaceSubrange(512 * 1024..<512 * 1024 + 5000, with: [UInt8](repeating: 2, count: 5000))
        return bytes
    }
}

/// Contents given as runs at offsets, with holes between them.
struct Ext4Runs: Ext4Contents {
    var runs: [(Int64, [UInt8])]

    mutating func forEachRun(_ body: (Int64, UnsafeRawBufferPointer) throws -> Void) throws {
        for (offset, bytes) in runs { try bytes.withUnsafeBytes { try body(offset, $0) } }
    }
}
