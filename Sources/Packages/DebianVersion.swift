/// A Debian package version, `[epoch:]upstream[-revision]`, ordered as Debian Policy 5.6.12 says
/// (the order `dpkg --compare-versions` uses).
package struct DebianVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    package let epoch: Int
    package let upstream: String
    package let revision: String
    /// The text as written.
    package let description: String

    /// Parses `text`; a version that dpkg would reject (empty, non-numeric epoch) is an error.
    package init(_ text: String) throws(PackagesError) {
        let trimmed = text.trimmingBlanks
        guard !trimmed.isEmpty else { throw PackagesError(.format, "empty version") }
        var rest = Substring(trimmed)
        var epoch = 0
        if let colon = rest.firstIndex(of: ":") {
            guard let value = Int(rest[..<colon]), value >= 0 else {
                throw PackagesError(.format, "version '\(text)' has a bad epoch")
            }
            epoch = value
            rest = rest[rest.index(after: colon)...]
        }
        var revision = ""
        if let dash = rest.lastIndex(of: "-") {
            revision = String(rest[rest.index(after: dash)...])
            rest = rest[..<dash]
        }
        guard !rest.isEmpty else { throw PackagesError(.format, "version '\(text)' has an empty upstream part") }
        self.epoch = epoch
        self.upstream = String(rest)
        self.revision = revision
        self.description = trimmed
    }

    package static func < (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) < 0 }

    package static func == (lhs: DebianVersion, rhs: DebianVersion) -> Bool { compare(lhs, rhs) == 0 }

    package func hash(into hasher: inout Hasher) {
        // Equal versions may be written differently ("1.0" and "0:1.0", "1.0-0" ...), so only the
        // epoch is hashed; the rest is decided by ==.
        hasher.combine(epoch)
    }

    /// -1, 0 or 1 as `lhs` sorts before, equal to or after `rhs`.
    package static func compare(_ lhs: DebianVersion, _ rhs: DebianVersion) -> Int {
        if lhs.epoch != rhs.epoch { return lhs.epoch < rhs.epoch ? -1 : 1 }
        let upstream = comparePart(Array(lhs.upstream.utf8), Array(rhs.upstream.utf8))
        if upstream != 0 { return upstream }
        return comparePart(Array(lhs.revision.utf8), Array(rhs.revision.utf8))
    }

    /// Policy 5.6.12: alternate maximal non-digit runs, compared character by character with `~`
    /// before everything (even the end), letters before other characters; and digit runs, compared
    /// as numbers. A missing part is an empty run, and an empty digit run is zero.
    static func comparePart(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            // Non-digit run.
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let x = i < a.count && !isDigit(a[i]) ? order(a[i]) : 0
                let y = j < b.count && !isDigit(b[j]) ? order(b[j]) : 0
                if x != y { return x < y ? -1 : 1 }
                if i < a.count && !isDigit(a[i]) { i += 1 }
                if j < b.count && !isDigit(b[j]) { j += 1 }
            }
            // Digit run: skip leading zeros, then the longer run is larger, else the first differing digit.
            while i < a.count && a[i] == UInt8(ascii: "0") { i += 1 }
            while j < b.count && b[j] == UInt8(ascii: "0") { j += 1 }
            var firstDifference = 0
            while i < a.count && isDigit(a[i]) && j < b.count && isDigit(b[j]) {
                if firstDifference == 0 && a[i] != b[j] { firstDifference = a[i] < b[j] ? -1 : 1 }
                i += 1
                j += 1
            }
            if i < a.count && isDigit(a[i]) { return 1 }
            if j < b.count && isDigit(b[j]) { return -1 }
            if firstDifference != 0 { return firstDifference }
        }
        return 0
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func isLetter(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
    }

    /// dpkg's weight of a non-digit character: `~` lowest, then the end of the run (0), letters,
    /// then everything else (ASCII + 256).
    private static func order(_ c: UInt8) -> Int {
        if c == UInt8(ascii: "~") { return -1 }
        if isLetter(c) { return Int(c) }
        return Int(c) + 256
    }
}

extension StringProtocol {
    var trimmingBlanks: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" || first == "\n" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\n" { slice.removeLast() }
        return String(slice)
    }
}
