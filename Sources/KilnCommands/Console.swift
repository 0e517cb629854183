import Foundation
import KilnSupport
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The only place that writes to the terminal: lines to stderr, a progress bar when stderr is a
/// terminal, or JSON lines on stdout with `--json`.
final class Console: Sendable {
    private let fd: FileDescriptor
    private let json: Bool
    private let animate: Bool
    /// What the terminal shows; every write to it holds this.
    private let screen = Mutex(Screen())

    static let standardError = Console(fd: .standardError, json: false)

    enum Level { case quiet, normal, verbose }

    /// `kiln --quiet` (no steps, notes or bars: warnings, errors and results only) or `--verbose`
    /// (also the detail lines libraries send as info events in phase "detail"). Set once, before any
    /// work starts.
    nonisolated(unsafe) static var level = Level.normal

    /// When kiln started (first touched by `KilnCLI.run`): steps say how far into the run they begin.
    static let started = ContinuousClock.now

    /// "0:07", "12:34", "1:02:03": the time since kiln started.
    static func elapsed(_ now: ContinuousClock.Instant = .now) -> String {
        let seconds = max(0, Int((now - started).components.seconds))
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60)
        return hours > 0
            ? String(format: "%d:%02d:%02d", hours, minutes, seconds % 60)
            : String(format: "%d:%02d", minutes, seconds % 60)
    }

    init(fd: FileDescriptor = .standardError, json: Bool) {
        self.fd = fd
        self.json = json
        animate = !json && isatty(2) == 1
    }

    /// The sink a library reports through.
    var sink: ProgressSink { ProgressSink { [self] event in self.handle(event) } }

    /// Writes one complete line to standard error.
    func write(_ line: String) {
        screen.withLock { screen in
            screen.clearBar()
            Self.writeAll(.standardError, Array((line + "\n").utf8))
        }
    }

    /// Writes every byte to `fd`. A reader that went away (EPIPE: `kiln ... | head -1`) ends kiln as
    /// SIGPIPE would have, but with its unfinished outputs removed; other errors (a terminal that was
    /// closed) lose the text and nothing else.
    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) {
        do {
            try fd.writeAll(bytes)
        } catch Errno.brokenPipe {
            Interruption.terminate(SIGPIPE)
        } catch {}
    }

    /// Prints the final result object (with `--json`) as one JSON line on stdout.
    func result(_ fields: some Encodable) {
        event("result", fields)
    }

    /// One JSON object on stdout with `"event": name` (`--json` only).
    func event(_ name: String, _ fields: some Encodable) {
        guard json else { return }
        emitJSON(JSONLine(event: name, fields: fields))
    }

    private func handle(_ event: ProgressEvent) {
        if json {
            let seconds = (ContinuousClock.now - Self.started).components
            emitJSON(
                JSONLine(
                    event: event.kind.rawValue,
                    fields: ProgressLine(
                        phase: event.phase,
                        elapsed: Double(seconds.seconds) + Double(seconds.attoseconds / 1_000_000_000_000_000) / 1000,
                        message: event.message.isEmpty ? nil : event.message,
                        completed: event.kind == .progress ? event.completed : nil,
                        total: event.kind == .progress ? event.total : nil)))
            return
        }
        if Self.level == .quiet && event.kind != .warning { return }
        switch event.kind {
        case .step:
            screen.withLock { screen in
                screen.currentPhase = event.message
                screen.progressStart = nil
            }
            write("kiln: [\(Self.elapsed())] \(event.message)")
        case .info:
            if event.phase == "detail" && Self.level != .verbose { return }
            write("kiln: \(event.message)")
        case .warning:
            write("kiln: warning: \(event.message)")
        case .progress:
            screen.withLock { screen in
                let now = ContinuousClock.now
                if let start = screen.progressStart, start.phase == event.phase, event.completed >= start.completed {
                    return
                }
                screen.progressStart = (event.phase, now, event.completed)
            }
            if animate {
                screen.withLock { $0.drawBar(event) }
            } else if let line = screen.withLock({ $0.progressLine(event) }) {
                write(line)
            }
        }
    }

    private func emitJSON(_ line: some Encodable) {
        guard let data = try? KilnJSON.encoder(pretty: false).encode(line) else { return }
        screen.withLock { _ in Self.writeAll(.standardOutput, Array(data) + [0x0A]) }
    }
}

/// One line of `--json` output: the fields of `fields` and its `"event"`.
struct JSONLine<Fields: Encodable>: Encodable {
    let event: String
    let fields: Fields

    private enum Key: String, CodingKey { case event }

    func encode(to encoder: any Encoder) throws {
        try fields.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(event, forKey: .event)
    }
}

/// A step, note, warning or progress report under `--json`.
private struct ProgressLine: Encodable {
    let phase: String
    /// Seconds since kiln started, to the millisecond.
    let elapsed: Double
    let message: String?
    let completed: Int64?
    let total: Int64?
}

/// `{"event": "error", ...}`: why a command gives no result.
struct ErrorLine: Encodable {
    let exitCode: Int32
    let messages: [String]

    enum CodingKeys: String, CodingKey {
        case exitCode = "exit_code"
        case messages
    }
}

/// The terminal's state: whether a bar is drawn, the step under way, when progress was last shown.
private struct Screen {
    var barShown = false
    var currentPhase = ""
    var lastDraw = ContinuousClock.now - .seconds(1)
    /// Where the current step's progress started: its rate and time left are measured from here.
    var progressStart: (phase: String, at: ContinuousClock.Instant, completed: Int64)?

    mutating func drawBar(_ event: ProgressEvent) {
        let now = ContinuousClock.now
        let finished = event.total.map { event.completed >= $0 } ?? false
        guard finished || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        var text = "\r\u{1B}[K  \(event.phase)"
        if let total = event.total, total > 0 {
            let fraction = min(1, Double(event.completed) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            text += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            text += String(format: " %3d%%", Int(fraction * 100))
            if let pace = pace(event) { text += "  \(pace)" }
        } else {
            text += " \(event.completed)"
        }
        Console.writeAll(.standardError, Array(text.utf8))
        barShown = true
    }

    /// Without a terminal (a log, CI): a line every 10 s at most, saying how far the step is.
    mutating func progressLine(_ event: ProgressEvent) -> String? {
        let now = ContinuousClock.now
        guard now - lastDraw >= .seconds(10), now - Console.started >= .seconds(10) else { return nil }
        guard let total = event.total, total > 0, event.completed < total else { return nil }
        lastDraw = now
        let percent = Int(Double(event.completed) / Double(total) * 100)
        let pace = pace(event).map { ", \($0)" } ?? ""
        let what = currentPhase.isEmpty ? event.phase : currentPhase
        return "kiln: [\(Console.elapsed(now))]   \(what): \(percent)% (\(event.completed) of \(total)\(pace))"
    }

    /// "2.4/s, 1:05 left": the rate since the step's first progress event (or since its count went
    /// back) and the time left at that rate; nil until there is a rate to tell.
    func pace(_ event: ProgressEvent) -> String? {
        guard let start = progressStart, start.phase == event.phase else { return nil }
        let elapsed = ContinuousClock.now - start.at
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let done = Double(event.completed - start.completed)
        guard seconds >= 2, done > 0 else { return nil }
        let rate = done / seconds
        let rateText =
            rate >= 1_048_576
            ? String(format: "%.1fM/s", rate / 1_048_576)
            : rate >= 10_240
                ? String(format: "%.0fk/s", rate / 1024)
                : rate >= 10 ? String(format: "%.0f/s", rate) : String(format: "%.1f/s", rate)
        guard let total = event.total, total > event.completed else { return rateText }
        let left = Int(Double(total - event.completed) / rate)
        let leftText =
            left >= 3600
            ? String(format: "%d:%02d:%02d", left / 3600, left / 60 % 60, left % 60)
            : String(format: "%d:%02d", left / 60, left % 60)
        return "\(rateText), \(leftText) left"
    }

    mutating func clearBar() {
        if barShown {
            Console.writeAll(.standardError, Array("\r\u{1B}[K".utf8))
            barShown = false
        }
    }
}
