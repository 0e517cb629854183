/// One problem in a description, at a position.
package struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Errors stop the load; warnings say what kiln read differently from what was written (a
    /// BoxGrinder default filled in, a variable taken from the environment) and let it go on.
    package enum Severity: String, Sendable {
        case error, warning
    }

    package var mark: SourceMark
    /// Lowercase, no period.
    package var message: String
    package var severity: Severity

    package init(mark: SourceMark, message: String, severity: Severity = .error) {
        self.mark = mark
        self.message = message
        self.severity = severity
    }

    /// `FILE:LINE:COL: error: MESSAGE` (or `warning:`).
    package var description: String { "\(mark): \(severity.rawValue): \(message)" }
}

/// The Appliance module's error: every problem found in a description (and its parents), each
/// with a position, or a file that could not be read.
package struct ApplianceError: Error, Sendable, CustomStringConvertible {
    package enum Code: Sendable {
        /// The file could not be read.
        case unreadable
        /// The description is wrong; see `diagnostics`.
        case invalid
    }

    package var code: Code
    /// At least one error; sorted by file and position.
    package var diagnostics: [Diagnostic]
    /// Warnings found on the way, sorted the same way.
    package var warnings: [Diagnostic]

    package init(code: Code = .invalid, diagnostics: [Diagnostic], warnings: [Diagnostic] = []) {
        self.code = code
        self.diagnostics = diagnostics
        self.warnings = warnings
    }

    /// One `FILE:LINE:COL: error: MESSAGE` line per diagnostic.
    package var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics while a description is read.
final class DiagnosticLog {
    private(set) var diagnostics: [Diagnostic] = []
    private(set) var warnings: [Diagnostic] = []

    func error(_ mark: SourceMark, _ message: String) {
        let diagnostic = Diagnostic(mark: mark, message: message)
        if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
    }

    func warning(_ mark: SourceMark, _ message: String) {
        let diagnostic = Diagnostic(mark: mark, message: message, severity: .warning)
        if !warnings.contains(diagnostic) { warnings.append(diagnostic) }
    }

    /// No errors (warnings may have been given).
    var isEmpty: Bool { diagnostics.isEmpty }

    func sorted() -> [Diagnostic] { Self.sorted(diagnostics) }

    func sortedWarnings() -> [Diagnostic] { Self.sorted(warnings) }

    private static func sorted(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            let (x, y) = (a.element.mark, b.element.mark)
            if x.file != y.file { return a.offset < b.offset }
            return (x.line, x.column, a.offset) < (y.line, y.column, b.offset)
        }.map(\.element)
    }
}

/// The closest candidate to `word` by edit distance (ignoring case), if it is close enough to be a
/// likely typo: for "did you mean" hints.
package func closest(to word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= max(1, min(3, candidate.count / 3)), distance < (best?.1 ?? Int.max) {
            best = (candidate, distance)
        }
    }
    return best?.0
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
