/// A colon-separated account database (`passwd`, `shadow`, `group`, `gshadow`, `subuid`, `subgid`) as
/// shadow's tools keep it: each line as read, so that a line they do not change is written back byte for
/// byte; a changed or added line is written from its fields.
struct ColonFile: Equatable {
    var lines: [[UInt8]]

    init(_ bytes: [UInt8]) {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if lines.last?.isEmpty == true { lines.removeLast() }
        self.lines = lines
    }

    /// Every line ends with a newline, as the tools write them.
    var bytes: [UInt8] { lines.flatMap { $0 + [UInt8(ascii: "\n")] } }

    /// The fields of line `index` (a line that is not an entry has as many fields as it has).
    func fields(_ index: Int) -> [String] {
        String(decoding: lines[index], as: UTF8.self).split(separator: ":", omittingEmptySubsequences: false)
            .map(String.init)
    }

    /// Entries with at least `count` fields, as (line index, fields).
    func entries(minimumFields count: Int) -> [(index: Int, fields: [String])] {
        lines.indices.compactMap { index in
            let fields = fields(index)
            return fields.count >= count && !fields[0].isEmpty ? (index, fields) : nil
        }
    }

    /// The first entry named `name`.
    func index(of name: String) -> Int? {
        let prefix = Array((name + ":").utf8)
        return lines.firstIndex { $0.starts(with: prefix) }
    }

    mutating func set(_ index: Int, _ fields: [String]) { lines[index] = Array(fields.joined(separator: ":").utf8) }
    mutating func append(_ fields: [String]) { lines.append(Array(fields.joined(separator: ":").utf8)) }
}

/// `/etc/login.defs` (`NAME value`) and `/etc/default/useradd` (`NAME=value`), read as shadow reads them.
struct AccountDefaults {
    var loginDefs: [String: String] = [:]
    var useradd: [String: String] = [:]

    init(loginDefs: [UInt8]?, useradd: [UInt8]?) {
        for line in String(decoding: loginDefs ?? [], as: UTF8.self).split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let name = words.first, !name.hasPrefix("#"), words.count >= 2 else { continue }
            var value = String(words[1])
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            self.loginDefs[String(name)] = value
        }
        for line in String(decoding: useradd ?? [], as: UTF8.self).split(separator: "\n") {
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            self.useradd[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
    }

    /// A number from login.defs as `strtol(…, 0)` reads it: `0x` hexadecimal, a leading `0` octal.
    func number(_ name: String) -> Int64? {
        guard var text = loginDefs[name], !text.isEmpty else { return nil }
        var negative = false
        if text.hasPrefix("-") {
            negative = true
            text.removeFirst()
        }
        let value: Int64?
        if text.lowercased().hasPrefix("0x") {
            value = Int64(text.dropFirst(2), radix: 16)
        } else if text.hasPrefix("0") && text.count > 1 {
            value = Int64(text.dropFirst(), radix: 8)
        } else {
            value = Int64(text)
        }
        return value.map { negative ? -$0 : $0 }
    }

    func number(_ name: String, default fallback: Int64) -> Int64 { number(name) ?? fallback }

    /// `SKEL` of /etc/default/useradd: where new homes are copied from.
    var skeletonFolder: String { useradd["SKEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/skel" }

    /// `HOME` of /etc/default/useradd: the folder new homes are made in.
    var homeBase: String { useradd["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/home" }
}
