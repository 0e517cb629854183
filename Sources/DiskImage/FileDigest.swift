import Crypto

/// A file's size and SHA-256, as the build's manifest and an OVA's manifest publish them.
///
/// A disk image is mostly holes. Their bytes are hashed from a buffer of zeros instead of being read:
/// reading a hole makes the kernel fill the page cache with zero pages, which for a 2 GiB image that
/// holds 360 MiB cost several times what hashing the zeros costs.
package struct FileDigest: Sendable {
    package let size: UInt64
    package let sha256: String

    package init(of path: String) throws(DiskImageError) {
        let file = try ImageFile(reading: path)
        let size = try file.size
        var hasher = SHA256()
        let chunk = 4 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        let zeros = [UInt8](repeating: 0, count: chunk)
        var offset: UInt64 = 0
        func hashZeros(to end: UInt64) {
            while offset < end {
                let n = Int(min(UInt64(chunk), end - offset))
                hasher.update(data: zeros[0..<n])
                offset += UInt64(n)
            }
        }
        for range in file.dataRanges(end: size) {
            hashZeros(to: range.lowerBound)
            while offset < range.upperBound {
                let n = Int(min(UInt64(chunk), range.upperBound - offset))
                var failure: DiskImageError?
                buffer.withUnsafeMutableBytes { raw in
                    do throws(DiskImageError) {
                        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]), at: offset)
                    } catch {
                        failure = error
                    }
                }
                if let failure { throw failure }
                hasher.update(data: buffer[0..<n])
                offset += UInt64(n)
            }
        }
        hashZeros(to: size)
        self.size = size
        self.sha256 = Exporter.hex(hasher.finalize())
    }
}
