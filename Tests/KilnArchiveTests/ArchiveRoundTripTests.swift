import Foundation
import Testing

@testable import KilnArchive

@Suite struct ArchiveRoundTripTests {
    private func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-archive-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func sample(_ writer: ArchiveWriter) throws {
        try writer.add(ArchiveEntry(path: "etc", kind: .directory, permissions: 0o755, modificationTime: 1_700_000_000))
        try writer.addFile(
            ArchiveEntry(
                path: "etc/shadow", kind: .file, permissions: 0o640, uid: 0, gid: 42, modificationTime: 1_700_000_000),
            contents: Array("root:*:19000::::::\n".utf8))
        try writer.add(ArchiveEntry(path: "etc/link", kind: .symlink(target: "shadow"), permissions: 0o777))
        try writer.add(
            ArchiveEntry(path: "etc/hard", kind: .hardlink(target: "etc/shadow"), permissions: 0o640, gid: 42))
        try writer.finish()
    }

    @Test func gnuTarIsReadByGNUTarAndByUs() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/a.tar"
        try sample(ArchiveWriter(path: path, format: .gnuTar))

        let listing = try run(["tar", "--numeric-owner", "-tvf", path])
        #expect(listing.contains("-rw-r----- 0/42"))
        #expect(listing.contains("etc/link -> shadow"))
        #expect(listing.contains("etc/hard link to etc/shadow"))

        let reader = try ArchiveReader(path: path)
        var seen: [ArchiveEntry] = []
        var shadow: [UInt8] = []
        while let entry = try reader.next() {
            seen.append(entry)
            if entry.path == "etc/shadow" { shadow = try reader.readData() }
        }
        #expect(seen.map(\.path) == ["etc", "etc/shadow", "etc/link", "etc/hard"])
        #expect(seen[1].gid == 42 && seen[1].permissions == 0o640 && seen[1].modificationTime == 1_700_000_000)
        #expect(seen[2].kind == .symlink(target: "shadow"))
        #expect(seen[3].kind == .hardlink(target: "etc/shadow"))
        #expect(String(decoding: shadow, as: UTF8.self) == "root:*:19000::::::\n")
    }

    @Test func gzipOutputIsReproducible() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sample(ArchiveWriter(path: "\(dir)/1.tar.gz", format: .gnuTar, compression: .gzip))
        try sample(ArchiveWriter(path: "\(dir)/2.tar.gz", format: .gnuTar, compression: .gzip))
        let one = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/1.tar.gz"))
        let two = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/2.tar.gz"))
        #expect(one == two)
        #expect(try run(["gzip", "-t", "\(dir)/1.tar.gz"]).isEmpty)
    }

    /// What an ext4 writer fed from a tar needs: extended attributes (pax) and sparse files' holes.
    @Test func attributesAndHolesComeThroughPax() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/x.tar"
        let capability: [UInt8] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let writer = try ArchiveWriter(path: path, format: .paxRestricted)
        try writer.addFile(
            ArchiveEntry(
                path: "usr/bin/ping", kind: .file, permissions: 0o755,
                extendedAttributes: [
                    .init(name: "security.capability", value: capability), .init(name: "user.note", value: [0, 1, 2]),
                ]),
            contents: Array("ELF".utf8))
        try writer.finish()
        let reader = try ArchiveReader(path: path)
        let entry = try reader.next()
        #expect(entry?.extendedAttributes.map(\.name) == ["security.capability", "user.note"])
        #expect(entry?.extendedAttributes.first?.value == capability)
        #expect(entry?.extendedAttributes.last?.value == [0, 1, 2])

        // GNU tar's sparse format: data at 0 and at 1 MiB, nothing between.
        let sparse = "\(dir)/sparse"
        #expect(FileManager.default.createFile(atPath: sparse, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: sparse))
        try handle.write(contentsOf: Data(repeating: 7, count: 4096))
        try handle.seek(toOffset: 1 << 20)
        try handle.write(contentsOf: Data(repeating: 9, count: 4096))
        try handle.close()
        _ = try run(["tar", "-C", dir, "--sparse", "-cf", "\(dir)/sparse.tar", "sparse"])
        let sparseReader = try ArchiveReader(path: "\(dir)/sparse.tar")
        _ = try sparseReader.next()
        var blocks: [(Int64, Int)] = []
        try sparseReader.readDataBlocks { offset, bytes in blocks.append((offset, bytes.count)) }
        #expect(blocks.first?.0 == 0)
        #expect(blocks.contains { $0.0 >= 1 << 20 })
        #expect(blocks.reduce(0) { $0 + $1.1 } == 8192)
    }

    @Test func unreadableArchiveIsAnErrorNamingIt() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not an archive at all".utf8).write(to: URL(fileURLWithPath: "\(dir)/x.deb"))
        #expect {
            try DebianArchive(path: "\(dir)/x.deb").controlMembers()
        } throws: { error in
            (error as? ArchiveError)?.archive.hasSuffix("x.deb") == true
        }
    }

    @Test func controlStanzaKeepsContinuationLines() {
        let fields = ControlStanza.parse("Package: a\nDescription: short\n long line\n .\nVersion: 1:2.0-1\n")
        #expect(fields.map(\.key) == ["Package", "Description", "Version"])
        #expect(fields[1].value == "short\n long line\n .")
        #expect(fields[2].value == "1:2.0-1")
    }

    private func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(arguments.joined(separator: " ")) failed")
        return String(decoding: data, as: UTF8.self)
    }
}
