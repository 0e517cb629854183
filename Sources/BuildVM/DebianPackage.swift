import KilnArchive

/// A Debian binary package read into a `FileTree` (KilnArchive reads the `ar` container and its
/// tar members, whatever their compression).
struct DebianPackage {
    /// The `.deb` file.
    let path: String

    /// The `control` file's fields ("Package", "Version", ...).
    func controlFields() throws(BuildVMError) -> [String: String] {
        do {
            let control = try DebianArchive(path: path).controlMembers()["control"]?.contents ?? []
            var fields: [String: String] = [:]
            for (key, value) in ControlStanza.parse(String(decoding: control, as: UTF8.self)) { fields[key] = value }
            return fields
        } catch {
            throw BuildVMError(.package, error.description)
        }
    }

    /// Adds the files of `data.tar.*` to `tree`. Regular files whose path `keepContents` rejects
    /// are recorded without their bytes (documentation, say), so that links to them still resolve.
    func extract(into tree: inout FileTree, keepContents: (String) -> Bool = { _ in true }) throws(BuildVMError) {
        var result = tree
        do {
            try DebianArchive(path: path).forEachDataEntry { (entry, reader) throws(ArchiveError) in
                guard !entry.path.isEmpty else { return }
                switch entry.kind {
                case .file:
                    // A compressed kernel module (trixie's `.ko.xz`) is kept as the `.ko` it holds:
                    // busybox's insmod loads only plain modules.
                    let path = ModuleSet.compressedSuffix(of: entry.path).map { String(entry.path.dropLast($0.count)) }
                    let keep = keepContents(path ?? entry.path)
                    var contents = keep ? try reader.readData() : nil
                    if let path, let compressed = contents {
                        contents = try ModuleSet.decompress(compressed, name: path)
                    }
                    result.add(path ?? entry.path, .file(contents: contents, permissions: entry.permissions))
                case .directory:
                    result.add(entry.path, .directory(permissions: entry.permissions))
                case .symlink(let target):
                    result.add(entry.path, .symlink(target: target))
                case .hardlink(let target):
                    // A hard link becomes a copy: cpio's link counting is not worth it for a few files.
                    guard let node = result.node(at: target) else {
                        throw ArchiveError(path, "hard link \(entry.path) to missing \(target)")
                    }
                    result.add(entry.path, node)
                case .characterDevice, .blockDevice, .fifo:
                    return
                }
            }
        } catch {
            throw BuildVMError(.package, error.description)
        }
        tree = result
    }
}
