/// One paragraph of a deb822 control file (Packages, Release, `.sources`, a `.deb`'s control):
/// fields in file order. Names compare case-insensitively, as deb822 says.
package struct Stanza: Sendable, Equatable {
    package var fields: [(name: String, value: String)]
    /// The 1-based line where the stanza starts, for messages.
    package var line: Int

    package init(fields: [(name: String, value: String)], line: Int = 1) {
        self.fields = fields
        self.line = line
    }

    /// The value of `name`: the first line without surrounding blanks, and each continuation line
    /// (one leading blank removed) after a newline.
    package subscript(name: String) -> String? {
        for field in fields where field.name.count == name.count && field.name.lowercased() == name.lowercased() {
            return field.value
        }
        return nil
    }

    package static func == (lhs: Stanza, rhs: Stanza) -> Bool {
        lhs.line == rhs.line && lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// A reader of deb822 text (Debian Policy 5.1): stanzas separated by blank lines, `Name: value`
/// fields, continuation lines starting with a space or tab, and `#` comment lines (allowed in
/// apt's `.sources` files, never in archive indexes).
package enum ControlFile {
    /// Parses `text` into stanzas.
    ///
    /// - Parameters:
    ///   - keeping: field names (exact case) to keep; others are skipped without building strings,
    ///     which matters for a 50 MB Packages index. `nil` keeps everything.
    ///   - origin: a path or URL named in errors.
    package static func parse(
        _ bytes: some Collection<UInt8>, keeping: Set<String>? = nil, origin: String
    ) throws(PackagesError) -> [Stanza] {
        let result: Result<[Stanza], PackagesError> =
            bytes.withContiguousStorageIfAvailable { buffer in
                Result { () throws(PackagesError) in try parseBuffer(buffer, keeping: keeping, origin: origin) }
            }
            ?? Result { () throws(PackagesError) in
                try Array(bytes).withUnsafeBufferPointer { buffer throws(PackagesError) in
                    try parseBuffer(buffer, keeping: keeping, origin: origin)
                }
            }
        return try result.get()
    }

    /// Parses a string into stanzas.
    package static func parse(_ text: String, keeping: Set<String>? = nil, origin: String) throws(PackagesError)
        -> [Stanza]
    {
        try parse(Array(text.utf8), keeping: keeping, origin: origin)
    }

    private static func parseBuffer(
        _ buffer: UnsafeBufferPointer<UInt8>, keeping: Set<String>?, origin: String
    ) throws(PackagesError) -> [Stanza] {
        let newline = UInt8(ascii: "\n")
        let colon = UInt8(ascii: ":")
        var stanzas: [Stanza] = []
        var fields: [(name: String, value: String)] = []
        var stanzaLine = 0
        var lineNumber = 0
        // Whether continuation lines belong to a field we keep.
        var keepingCurrent = false
        var position = 0
        let end = buffer.count

        func finishStanza() {
            if !fields.isEmpty { stanzas.append(Stanza(fields: fields, line: stanzaLine)) }
            fields = []
            stanzaLine = 0
        }

        while position < end {
            lineNumber += 1
            var lineEnd = position
            while lineEnd < end && buffer[lineEnd] != newline { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > position && buffer[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            defer { position = lineEnd + 1 }

            let first = contentEnd > position ? buffer[position] : newline
            if first == UInt8(ascii: "#") { continue }
            if isBlankLine(buffer, position, contentEnd) {
                finishStanza()
                keepingCurrent = false
                continue
            }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                guard stanzaLine != 0 else {
                    throw PackagesError(.format, "\(origin):\(lineNumber): continuation line outside a field")
                }
                if keepingCurrent, let last = fields.indices.last {
                    let piece = string(buffer, position + 1, contentEnd)
                    fields[last].value += "\n" + piece
                }
                continue
            }
            var nameEnd = position
            while nameEnd < contentEnd && buffer[nameEnd] != colon { nameEnd += 1 }
            guard nameEnd < contentEnd, nameEnd > position else {
                throw PackagesError(.format, "\(origin):\(lineNumber): expected 'Field: value'")
            }
            if stanzaLine == 0 { stanzaLine = lineNumber }
            let name = string(buffer, position, nameEnd)
            keepingCurrent = keeping?.contains(name) ?? true
            if keepingCurrent {
                var valueStart = nameEnd + 1
                var valueEnd = contentEnd
                while valueStart < valueEnd && isBlank(buffer[valueStart]) { valueStart += 1 }
                while valueEnd > valueStart && isBlank(buffer[valueEnd - 1]) { valueEnd -= 1 }
                fields.append((name, string(buffer, valueStart, valueEnd)))
            }
        }
        finishStanza()
        return stanzas
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func isBlankLine(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var index = start
        while index < end {
            if !isBlank(buffer[index]) { return false }
            index += 1
        }
        return true
    }

    private static func string(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)
    }
}
