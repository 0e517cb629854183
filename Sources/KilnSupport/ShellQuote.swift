/// Quoting for showing commands to people; kiln never hands a command line to a shell itself.
package enum ShellQuote {
    /// The word as a POSIX shell would read it back unchanged.
    package static func quote(_ word: String) -> String {
        if word.isEmpty { return "''" }
        let plain = word.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", "/", ",", ":", "=", "+", "@", "%": return true
            default: return false
            }
        }
        if plain { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
