import Foundation
import NetBoot

/// One file the lab mirror offers: its Packages stanza as the archive wrote it, and where its bytes
/// come from.
package struct MirrorPackage: Sendable, Equatable {
    package var name: String
    /// The path below the mirror's base (`pool/main/...`), from the stanza's `Filename`.
    package var filename: String
    package var size: Int64
    /// Lowercase hex, from the stanza's `SHA256`: the cache key, and what a download is checked against.
    package var sha256: String
    /// Where the file is downloaded from when kiln's cache lacks it; nil when only the cache may answer.
    package var url: String?
    /// The stanza's bytes (UTF-8 deb822 fields, no blank line), copied into the mirror's index as they are.
    package var stanza: [UInt8]

    package init(name: String, filename: String, size: Int64, sha256: String, url: String?, stanza: [UInt8]) {
        self.name = name
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.url = url
        self.stanza = stanza
    }

    /// Splits a decompressed Packages index into its stanzas.
    ///
    /// - Parameters:
    ///   - baseURL: the archive's base URI; each package's `url` is `<baseURL>/<Filename>`.
    ///   - origin: a path or URL named in errors.
    /// - Throws: `NetBootError(.configuration)` naming the origin and line of a stanza without
    ///   `Package`, `Filename`, `Size` or a 64-digit `SHA256`.
    package static func parseIndex(_ bytes: [UInt8], baseURL: String?, origin: String) throws -> [MirrorPackage] {
        var packages: [MirrorPackage] = []
        let newline = UInt8(ascii: "\n")
        var position = 0
        var line = 1
        while position < bytes.count {
            while position < bytes.count && bytes[position] == newline {
                position += 1
                line += 1
            }
            guard position < bytes.count else { break }
            let start = position
            let startLine = line
            var end = position
            // A stanza ends at an empty line or at the end of the index.
            while position < bytes.count && bytes[position] != newline {
                let lineEnd = bytes[position...].firstIndex(of: newline) ?? bytes.count
                end = lineEnd
                position = min(lineEnd + 1, bytes.count)
                line += 1
            }
            packages.append(try parseStanza(bytes[start..<end], baseURL: baseURL, origin: "\(origin):\(startLine)"))
        }
        return packages
    }

    static func parseStanza(_ bytes: ArraySlice<UInt8>, baseURL: String?, origin: String) throws -> MirrorPackage {
        var fields: [String: String] = [:]
        let wanted: Set<String> = ["Package", "Filename", "Size", "SHA256"]
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            // Only Package, Filename, Size and SHA256 are read; skip other lines before making strings.
            guard let first = rawLine.first,
                first == UInt8(ascii: "P") || first == UInt8(ascii: "F") || first == UInt8(ascii: "S"),
                let colon = rawLine.firstIndex(of: UInt8(ascii: ":"))
            else { continue }
            let name = String(decoding: rawLine[rawLine.startIndex..<colon], as: UTF8.self)
            guard wanted.contains(name) else { continue }
            let value = String(decoding: rawLine[(colon + 1)...], as: UTF8.self)
            fields[name] = value.trimmingCharacters(in: .whitespaces)
        }
        guard let name = fields["Package"], !name.isEmpty else {
            throw NetBootError(.configuration, "\(origin): the stanza has no Package field")
        }
        guard let filename = fields["Filename"], !filename.isEmpty else {
            throw NetBootError(.configuration, "\(origin): package \(name) has no Filename field")
        }
        guard let sizeText = fields["Size"], let size = Int64(sizeText), size >= 0 else {
            throw NetBootError(.configuration, "\(origin): package \(name) has no valid Size field")
        }
        guard let sha256 = fields["SHA256"]?.lowercased(), sha256.count == 64,
            sha256.allSatisfy({ $0.isHexDigit })
        else {
            throw NetBootError(.configuration, "\(origin): package \(name) has no valid SHA256 field")
        }
        return MirrorPackage(
            name: name, filename: filename, size: size, sha256: sha256,
            url: baseURL.map { "\($0)/\(filename)" }, stanza: Array(bytes))
    }
}
