/// One message from the builder guest: a console line `KILN:<seq>:<event>:<payload>`.
package struct GuestEvent: Sendable, Equatable {
    /// 1, 2, 3, ... without gaps within one boot.
    package var sequence: Int
    /// "init", "modules", "job", "step", "progress", "info", "result", "error", "exit".
    package var name: String
    /// Free text to the end of the line.
    package var payload: String

    package init(sequence: Int, name: String, payload: String) {
        self.sequence = sequence
        self.name = name
        self.payload = payload
    }
}

/// Tells protocol lines from everything else on the console (kernel messages, the job's own
/// output). A line counts only if it starts with `KILN:` and carries the next sequence number, so
/// that a stray or repeated line (a job printing `KILN:` itself, a line cut by a kernel message)
/// is logged and never obeyed.
struct GuestProtocolParser {
    private(set) var expected = 1

    mutating func parse(_ line: String) -> GuestEvent? {
        guard line.hasPrefix("KILN:") else { return nil }
        let fields = line.dropFirst(5).split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let sequence = Int(fields[0]), sequence == expected, !fields[1].isEmpty else {
            return nil
        }
        expected += 1
        return GuestEvent(sequence: sequence, name: String(fields[1]), payload: String(fields[2]))
    }
}
