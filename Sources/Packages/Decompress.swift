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
}
