/// Reads a Packages index as its bytes arrive, chunk by chunk, and makes a `BinaryPackage` of
/// each stanza as soon as the stanza ends. Only the fields the resolver reads become strings; the
/// rest (Description is most of an index) is skipped in place. A whole index is never held: a
/// decompressed bookworm main is 46 MB, and kiln's own memory must stay far below that.
struct PackagesIndexParser {
    /// The fields kept, in slot order.
    private enum Slot: Int, CaseIterable {
        case package, version, architecture, multiArch, priority, essential, depends, preDepends, provides, conflicts
        case breaks, filename, size, sha256

        var fieldName: String {
            switch self {
            case .package: "Package"
            case .version: "Version"
            case .architecture: "Architecture"
            case .multiArch: "Multi-Arch"
            case .priority: "Priority"
            case .essential: "Essential"
            case .depends: "Depends"
            case .preDepends: "Pre-Depends"
            case .provides: "Provides"
            case .conflicts: "Conflicts"
            case .breaks: "Breaks"
            case .filename: "Filename"
            case .size: "Size"
            case .sha256: "SHA256"
            }
        }
    }

    /// Each kept field's name as bytes, beside its slot (Packages files spell them exactly so).
    private static let names: [(bytes: [UInt8], slot: Slot)] = Slot.allCases.map { (Array($0.fieldName.utf8), $0) }

    let source: BinaryPackage.SharedSource
    let origin: String
    /// The packages of every stanza read so far.
    private(set) var packages: [BinaryPackage] = []
    /// The start of a line that the previous chunk cut.
    private var carry: [UInt8] = []
    private var lineNumber = 0
    private var stanzaLine = 0
    private var values = [String?](repeating: nil, count: Slot.allCases.count)
    /// The slot continuation lines extend, nil while in a skipped field.
    private var current: Slot?
    private var inStanza = false

    init(source: ArchiveSource, origin: String) {
        self.source = BinaryPackage.SharedSource(source)
        self.origin = origin
    }

    /// Parses the next bytes of the index.
    mutating func feed(_ chunk: UnsafeRawBufferPointer) throws(PackagesError) {
        let bytes = chunk.bindMemory(to: UInt8.self)
        let newline = UInt8(ascii: "\n")
        var start = 0
        if !carry.isEmpty {
            guard let end = bytes.firstIndex(of: newline) else {
                carry.append(contentsOf: bytes)
                return
            }
            carry.append(contentsOf: bytes[0..<end])
            let line = carry
            carry.removeAll(keepingCapacity: true)
            try take(line)
            start = end + 1
        }
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != newline { end += 1 }
            if end == bytes.count {
                carry.append(contentsOf: bytes[start..<end])
                return
            }
            try line(bytes, start, end)
            start = end + 1
        }
    }

    /// Ends the index (a last line without a newline, a last stanza without a blank line) and
    /// returns every package.
    mutating func finish() throws(PackagesError) -> [BinaryPackage] {
        if !carry.isEmpty {
            let line = carry
            carry = []
            try take(line)
        }
        try endStanza()
        return packages
    }

    /// Parses one line held apart (one that a chunk boundary cut).
    private mutating func take(_ line: [UInt8]) throws(PackagesError) {
        let parsed = line.withUnsafeBufferPointer { buffer in
            Result { () throws(PackagesError) in try self.line(buffer, 0, buffer.count) }
        }
        try parsed.get()
    }

    private mutating func line(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ lineEnd: Int) throws(PackagesError)
    {
        lineNumber += 1
        var end = lineEnd
        if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        if end > start && buffer[start] == UInt8(ascii: "#") { return }
        var first = start
        while first < end && Self.isBlank(buffer[first]) { first += 1 }
        if first == end {
            try endStanza()
            return
        }
        if first != start {
            guard inStanza else {
                throw PackagesError(.format, "\(origin):\(lineNumber): continuation line outside a field")
            }
            if let slot = current {
                let piece = String(decoding: UnsafeBufferPointer(rebasing: buffer[(start + 1)..<end]), as: UTF8.self)
                values[slot.rawValue] = (values[slot.rawValue] ?? "") + "\n" + piece
            }
            return
        }
        var colon = start
        while colon < end && buffer[colon] != UInt8(ascii: ":") { colon += 1 }
        guard colon < end, colon > start else {
            throw PackagesError(.format, "\(origin):\(lineNumber): expected 'Field: value'")
        }
        if !inStanza {
            inStanza = true
            stanzaLine = lineNumber
        }
        let name = UnsafeBufferPointer(rebasing: buffer[start..<colon])
        current = Self.names.first { $0.bytes.count == name.count && $0.bytes.elementsEqual(name) }?.slot
        guard let slot = current else { return }
        var valueStart = colon + 1
        var valueEnd = end
        while valueStart < valueEnd && Self.isBlank(buffer[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart && Self.isBlank(buffer[valueEnd - 1]) { valueEnd -= 1 }
        values[slot.rawValue] = String(
            decoding: UnsafeBufferPointer(rebasing: buffer[valueStart..<valueEnd]), as: UTF8.self)
    }

    private mutating func endStanza() throws(PackagesError) {
        current = nil
        guard inStanza else { return }
        inStanza = false
        defer { for slot in values.indices { values[slot] = nil } }
        func value(_ slot: Slot) -> String? { values[slot.rawValue] }
        func required(_ slot: Slot) throws(PackagesError) -> String {
            guard let text = values[slot.rawValue], !text.isEmpty else {
                throw PackagesError(.format, "\(origin):\(stanzaLine): the stanza has no \(slot.fieldName) field")
            }
            return text
        }
        let name = try required(.package)
        let version: DebianVersion
        do {
            version = try DebianVersion(try required(.version))
        } catch {
            throw PackagesError(.format, "\(origin):\(stanzaLine): package \(name)", cause: error.message)
        }
        let architecture = try required(.architecture)
        let filename = try required(.filename)
        guard let size = Int64(try required(.size)) else {
            throw PackagesError(.format, "\(origin):\(stanzaLine): package \(name) has a bad Size")
        }
        packages.append(
            BinaryPackage(
                name: name, version: version, architecture: architecture, multiArch: value(.multiArch),
                priority: value(.priority), essential: value(.essential) == "yes", depends: value(.depends),
                preDepends: value(.preDepends), provides: value(.provides), conflicts: value(.conflicts),
                breaks: value(.breaks), filename: filename, size: size,
                sha256: BinaryPackage.Digest(try required(.sha256)),
                source: source))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
