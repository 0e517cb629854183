/// Rewrites a BoxGrinder description (`.appl`) so that libyaml reads it the way BoxGrinder's Kwalify
/// parser did, which was more lenient than YAML 1.1 in two ways that real descriptions rely on:
///
/// - a plain scalar may start with `@` (`- @core`): YAML reserves the indicator, Kwalify read the
///   text `@core`. Such a value is rewritten single-quoted.
/// - a backslash inside a double-quoted scalar that is not `\"` or `\\` (or ends the line) is kept
///   as written (`"sed 's/x\{9\}//'"`, `"a\serial"`): YAML would refuse `\{` and `\s` and turn
///   `\t` into a tab. Such a backslash is rewritten as `\\`.
///
/// Everything else is left byte for byte, so that positions in diagnostics stay those of the file
/// (a rewritten value is at most a few columns further right on its own line).
enum KwalifyText {
    static func normalized(_ text: String) -> String {
        var scanner = Scanner()
        var out: [String] = []
        // By scalars: "\r\n" is one Character, and a line of a Windows file ends in "\r".
        for line in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            out.append(scanner.line(Array(line)))
        }
        return out.joined(separator: "\n")
    }

    private struct Scanner {
        /// Inside a double-quoted scalar that goes on to the next line.
        var inDouble = false
        /// Inside a single-quoted scalar that goes on to the next line.
        var inSingle = false
        /// The indentation of the line that opened a block scalar (`|`, `>`): deeper lines are its text.
        var blockIndent: Int?

        mutating func line(_ chars: [Unicode.Scalar]) -> String {
            var out = String.UnicodeScalarView()
            let indent = chars.prefix { $0 == " " }.count
            let blank = chars.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" }
            if let open = blockIndent {
                if blank || indent > open { return String(String.UnicodeScalarView(chars)) }
                blockIndent = nil
            }
            var index = 0
            var valueStart = true
            if inDouble {
                index = double(chars, from: 0, into: &out)
                valueStart = false
            } else if inSingle {
                index = single(chars, from: 0, into: &out)
                valueStart = false
            }
            var flowDepth = 0
            while index < chars.count {
                let c = chars[index]
                if c == " " || c == "\t" {
                    out.append(c)
                    index += 1
                    continue
                }
                if c == "#" && (index == 0 || chars[index - 1] == " " || chars[index - 1] == "\t") {
                    out.append(contentsOf: chars[index...])
                    break
                }
                if valueStart {
                    switch c {
                    case "-" where index + 1 == chars.count || chars[index + 1] == " ":
                        out.append(c)
                        index += 1
                        continue
                    case "[", "{":
                        flowDepth += 1
                        out.append(c)
                        index += 1
                        continue
                    case "\"":
                        out.append(c)
                        index = double(chars, from: index + 1, into: &out)
                        valueStart = false
                        continue
                    case "'":
                        out.append(c)
                        index = single(chars, from: index + 1, into: &out)
                        valueStart = false
                        continue
                    case "|", ">":
                        blockIndent = indent
                        out.append(contentsOf: chars[index...])
                        return String(out)
                    case "@", "`":
                        index = reserved(chars, from: index, flow: flowDepth > 0, into: &out)
                        valueStart = false
                        continue
                    default:
                        valueStart = false
                    }
                }
                // A plain scalar or what follows a value: `: ` and flow punctuation start a new value.
                out.append(c)
                index += 1
                if c == ":" && (index == chars.count || chars[index] == " ") {
                    valueStart = true
                } else if flowDepth > 0 && (c == "," || c == "[" || c == "{") {
                    if c != "," { flowDepth += 1 }
                    valueStart = true
                } else if flowDepth > 0 && (c == "]" || c == "}") {
                    flowDepth -= 1
                }
            }
            return String(out)
        }

        /// Copies a double-quoted scalar's text from `start` (after the opening quote) through its
        /// closing quote, doubling backslashes that YAML would read as escapes Kwalify did not.
        mutating func double(_ chars: [Unicode.Scalar], from start: Int, into out: inout String.UnicodeScalarView)
            -> Int
        {
            var index = start
            while index < chars.count {
                let c = chars[index]
                if c == "\\" {
                    let next = index + 1 < chars.count ? chars[index + 1] : nil
                    if let next, next == "\"" || next == "\\" {
                        out.append(c)
                        out.append(next)
                        index += 2
                        continue
                    }
                    // A backslash that ends the line joins the next one, in both parsers.
                    if next == nil || next == "\r" {
                        out.append(c)
                        index += 1
                        continue
                    }
                    out.append("\\")
                    out.append("\\")
                    index += 1
                    continue
                }
                out.append(c)
                index += 1
                if c == "\"" {
                    inDouble = false
                    return index
                }
            }
            inDouble = true
            return index
        }

        mutating func single(_ chars: [Unicode.Scalar], from start: Int, into out: inout String.UnicodeScalarView)
            -> Int
        {
            var index = start
            while index < chars.count {
                let c = chars[index]
                out.append(c)
                index += 1
                if c == "'" {
                    if index < chars.count && chars[index] == "'" {
                        out.append("'")
                        index += 1
                        continue
                    }
                    inSingle = false
                    return index
                }
            }
            inSingle = true
            return index
        }

        /// A plain value starting with `@` or a backquote, single-quoted: up to a comment, the end
        /// of the line, or (in a flow collection) the next `,`, `]` or `}`.
        func reserved(_ chars: [Unicode.Scalar], from start: Int, flow: Bool, into out: inout String.UnicodeScalarView)
            -> Int
        {
            var end = start
            while end < chars.count {
                let c = chars[end]
                if c == "#" && (chars[end - 1] == " " || chars[end - 1] == "\t") { break }
                if flow && (c == "," || c == "]" || c == "}") { break }
                if c == ":" && (end + 1 == chars.count || chars[end + 1] == " ") { break }
                end += 1
            }
            var valueEnd = end
            while valueEnd > start && [" ", "\t", "\r"].contains(chars[valueEnd - 1]) { valueEnd -= 1 }
            out.append("'")
            for c in chars[start..<valueEnd] {
                out.append(c)
                if c == "'" { out.append("'") }
            }
            out.append("'")
            out.append(contentsOf: chars[valueEnd..<end])
            return end
        }
    }
}
