/// Reads a Debian binary package: an `ar` archive holding `debian-binary`, `control.tar.*` and
/// `data.tar.*` (deb(5)). Both tar members are read with libarchive, whatever their compression
/// (xz, zstd, gzip or none).
struct DebianPackage {
    /// The `.deb` file.
    let path: String

    /// The `control` file's fields ("Package", "Version", ...), from `control.tar.*`.
    func controlFields() throws(BuildVMError) -> [String: String] {
        var fields: [String: String] = [:]
        try withMember(prefix: "control.tar") { (reader: ArchiveReader) throws(BuildVMError) in
            while let header = try reader.next() {
                guard header.path == "control" else { continue }
                let text = String(decoding: try reader.readData(), as: UTF8.self)
                var last: String?
                for line in text.split(separator: "\n") {
                    if line.first == " " || line.first == "\t" {
                        if let key = last { fields[key, default: ""] += "\n" + line.dropFirst() }
                    } else if let colon = line.firstIndex(of: ":") {
                        let key = String(line[..<colon])
                        fields[key] = line[line.index(after: colon)...].trimmingSpaces()
                        last = key
                    }
                }
                return
            }
            throw BuildVMError(.package, "\(path): control.tar has no control file")
        }
        return fields
    }

    /// Adds the files of `data.tar.*` to `tree`. Regular files whose path `keepContents` rejects
    /// are recorded without their bytes (documentation, say), so that links to them still resolve.
    func extract(into tree: inout FileTree, keepContents: (String) -> Bool = { _ in true }) throws(BuildVMError) {
        try withMember(prefix: "data.tar") { (reader: ArchiveReader) throws(BuildVMError) in
            while let header = try reader.next() {
                guard !header.path.isEmpty else { continue }
                switch header.kind {
                case .file:
                    let contents = keepContents(header.path) ? try reader.readData() : nil
                    tree.add(header.path, .file(contents: contents, permissions: header.permissions))
                case .directory:
                    tree.add(header.path, .directory(permissions: header.permissions))
                case .symlink(let target):
                    tree.add(header.path, .symlink(target: target))
                case .hardlink(let target):
                    // A hard link becomes a copy: cpio's link counting is not worth it for a few files.
                    guard let node = tree.node(at: target) else {
                        throw BuildVMError(.package, "\(path): hard link \(header.path) to missing \(target)")
                    }
                    tree.add(header.path, node)
                case .other:
                    continue
                }
            }
        }
    }

    /// Opens the `ar` member whose name starts with `prefix` and hands a reader over it to `body`.
    private func withMember(
        prefix: String, _ body: (ArchiveReader) throws(BuildVMError) -> Void
    ) throws(BuildVMError) {
        let outer = try ArchiveReader(path: path)
        while let header = try outer.next() {
            guard header.path.hasPrefix(prefix) else {
                try outer.skipData()
                continue
            }
            let inner = try ArchiveReader(bytes: try outer.readData(), name: "\(path):\(header.path)")
            try body(inner)
            return
        }
        throw BuildVMError(.package, "\(path): no \(prefix).* member (is it a .deb?)")
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" || text.last == "\r" { text = text.dropLast() }
        return String(text)
    }
}
