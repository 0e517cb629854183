import Foundation
import KilnArchive

enum Decompress {
    /// The bytes of one compressed stream (`Packages.xz`, `.gz`, `.zst`), whole.
    static func stream(_ bytes: some Collection<UInt8>, origin: String) throws(PackagesError) -> [UInt8] {
        do {
            let reader = try ArchiveReader(bytes: bytes, name: origin, format: .raw)
            guard try reader.next() != nil else { return [] }
            return try reader.readData()
        } catch {
            throw PackagesError(.archive, "cannot decompress \(origin)", cause: error.message)
        }
    }

    /// Hands the decompressed bytes of the file at `path` to `body` in chunks of up to 1 MiB, never
    /// whole; a file whose name has no compression suffix (`Packages`) is read as it is.
    static func chunks(
        path: String, compressed: Bool, origin: String,
        _ body: (UnsafeRawBufferPointer) throws(PackagesError) -> Void
    ) throws(PackagesError) {
        guard compressed else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw PackagesError(.cache, "cannot read \(path)")
            }
            defer { try? handle.close() }
            while true {
                let chunk: Data
                do {
                    guard let read = try handle.read(upToCount: 1 << 20), !read.isEmpty else { return }
                    chunk = read
                } catch {
                    throw PackagesError(.cache, "cannot read \(path)", cause: "\(error)")
                }
                let fed = chunk.withUnsafeBytes { buffer in Result { () throws(PackagesError) in try body(buffer) } }
                try fed.get()
            }
        }
        // The caller's errors pass through libarchive's callback as this box, not as ArchiveError.
        var failure: PackagesError?
        do {
            let reader = try ArchiveReader(path: path, format: .raw)
            guard try reader.next() != nil else { return }
            try reader.readData { (buffer) throws(ArchiveError) in
                if case .failure(let error) = Result(catching: { () throws(PackagesError) in try body(buffer) }) {
                    failure = error
                    throw ArchiveError(origin, "stopped")
                }
            }
        } catch {
            if let failure { throw failure }
            throw PackagesError(.archive, "cannot decompress \(origin)", cause: error.message)
        }
    }
}
