import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import DiskImage

/// FileDigest hashes holes without reading them; coreutils' sha256sum, which reads every byte, judges.
@Suite(.requires(.program("sha256sum")))
struct FileDigestTests {
    private func sha256sum(_ path: String) async throws -> String {
        let (ended, text) = try await Subprocess.output(["sha256sum", path])
        #expect(ended == .exited(0))
        return String(text.prefix(64))
    }

    /// Data at the start, in the middle (not on a 4 KiB boundary) and at the very end, holes between
    /// and around them; an empty file; a file that is one hole.
    struct Shape: Sendable, CustomTestStringConvertible {
        let size: UInt64
        let data: [UInt64]
        var testDescription: String { "\(size) bytes, data at \(data)" }
    }

    @Test(arguments: [
        Shape(size: (9 << 20) + 123, data: [0, 5 << 20 | 77, (9 << 20) + 100]),
        Shape(size: 0, data: []),
        Shape(size: 3 << 20, data: []),
        Shape(size: 4096, data: [0]),
    ])
    func sparseFileHashesAsItsBytes(_ shape: Shape) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let path = "\(dir)/sparse.raw"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(shape.size)) == 0)
        for (index, offset) in shape.data.enumerated() {
            let bytes = (0..<23).map { UInt8(truncatingIfNeeded: $0 * 31 + index + 1) }
            let count = Int(min(UInt64(bytes.count), shape.size - offset))
            #expect(pwrite(fd, bytes, count, off_t(offset)) == count)
        }
        close(fd)
        let digest = try FileDigest(of: path)
        #expect(digest.size == shape.size)
        #expect(digest.sha256 == (try await sha256sum(path)))
    }

    @Test func missingFileIsAnError() {
        #expect(throws: DiskImageError.self) { try FileDigest(of: "/nonexistent/kiln-digest.raw") }
    }
}
