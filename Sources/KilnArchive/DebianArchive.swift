/// A Debian binary package file (deb(5)): an `ar` container holding `debian-binary`,
/// `control.tar.*` and `data.tar.*`, each member read with libarchive whatever its compression.
package struct DebianArchive: Sendable {
    package let path: String

    package init(path: String) {
        self.path = path
    }

    /// The members of `control.tar.*` ("control", "postinst", "conffiles", "md5sums", ...), by
    /// name, with their permission bits.
    package func controlMembers() throws(ArchiveError) -> [String: (permissions: UInt32, contents: [UInt8])] {
        var members: [String: (permissions: UInt32, contents: [UInt8])] = [:]
        try withMember(prefix: "control.tar") { (reader: ArchiveReader) throws(ArchiveError) in
            while let entry = try reader.next() {
                guard entry.kind == .file, !entry.path.isEmpty else { continue }
                members[entry.path] = (entry.permissions, try reader.readData())
            }
        }
        guard members["control"] != nil else { throw ArchiveError(path, "control.tar has no control file") }
        return members
    }

    /// Hands each entry of `data.tar.*` to `body`, with a reader positioned on its data (which
    /// `body` may read or leave: it is skipped).
    package func forEachDataEntry(
        _ body: (ArchiveEntry, ArchiveReader) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        try withMember(prefix: "data.tar") { (reader: ArchiveReader) throws(ArchiveError) in
            while let entry = try reader.next() {
                try body(entry, reader)
            }
        }
    }

    private func withMember(
        prefix: String, _ body: (ArchiveReader) throws(ArchiveError) -> Void
    ) throws(ArchiveError) {
        let outer = try ArchiveReader(path: path, format: .ar)
        while let header = try outer.next() {
            guard header.path.hasPrefix(prefix) else {
                try outer.skipData()
                continue
            }
            // Read through the outer reader: a kernel's data.tar.xz is 26 MB, never held whole.
            let inner = try ArchiveReader(member: outer, name: "\(path):\(header.path)")
            try body(inner)
            return
        }
        throw ArchiveError(path, "no \(prefix).* member (is it a .deb?)")
    }
}

/// Fields of a deb822 stanza (a `control` file, a `Packages` entry): continuation lines are kept
/// with their newlines, keys as written.
package enum ControlStanza {
    package static func parse(_ text: String) -> [(key: String, value: String)] {
        var fields: [(key: String, value: String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.first == " " || line.first == "\t" {
                if !fields.isEmpty { fields[fields.count - 1].value += "\n" + line }
            } else if let colon = line.firstIndex(of: ":") {
                let key = String(line[..<colon])
                var value = line[line.index(after: colon)...]
                while value.first == " " || value.first == "\t" { value = value.dropFirst() }
                while value.last == " " || value.last == "\t" || value.last == "\r" { value = value.dropLast() }
                fields.append((key, String(value)))
            }
        }
        return fields
    }
}
