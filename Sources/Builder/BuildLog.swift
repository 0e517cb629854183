import Foundation
import KilnSupport
import Synchronization

/// The whole story of one build, kept beside its outputs as `build.log` whether it succeeded or
/// failed: every step, note and warning with the time since the build began, then the builder
/// guest's console (the packages' configuration, GRUB, `post` output) as the guest printed it.
///
/// The terminal shows the same steps, but a CI job's console scrolls away and a failed build's
/// guest console is otherwise gone with its scratch directory. Passwords never reach it: kiln's own
/// events hold none, and passphrases travel to the guest in files, not on its console.
final class BuildLog: Sendable {
    private let started = ContinuousClock.now
    private let text = Mutex<(lines: [String], console: String)>(([], ""))

    /// A sink that records each event and passes it on to `next`.
    func recording(to next: ProgressSink) -> ProgressSink {
        ProgressSink { event in
            self.record(event)
            next(event)
        }
    }

    func record(_ event: ProgressEvent) {
        let text: String
        switch event.kind {
        case .step: text = event.message
        case .info: text = event.message
        case .warning: text = "warning: \(event.message)"
        // Bars are for terminals; the step's start and end times are in the log already.
        case .progress: return
        }
        let elapsed = Int((ContinuousClock.now - started).components.seconds)
        let stamp = String(format: "[%d:%02d]", elapsed / 60, elapsed % 60)
        self.text.withLock { $0.lines.append("\(stamp) \(text)") }
    }

    /// Takes the guest's console log before its scratch directory goes, less the guest protocol's own
    /// lines (`KILN:...`: heartbeats, and the events the steps above already tell).
    func keepConsole(from paths: [String]) {
        // The serial console ends its lines with CR LF, one Character in Swift: split on any newline.
        let text = paths.compactMap { FileManager.default.contents(atPath: $0) }.map { data in
            String(decoding: data, as: UTF8.self)
                .split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
                .filter { !$0.hasPrefix("KILN:") }.joined(separator: "\n")
        }.joined(separator: "\n")
        self.text.withLock { $0.console = text }
    }

    /// Writes the log to `directory/build.log`, ending with `outcome`. A log that cannot be written
    /// does not fail the build: the caller is told with a warning.
    func write(to directory: String, outcome: String, progress: ProgressSink) {
        let text: String = self.text.withLock { kept in
            var text = kept.lines.joined(separator: "\n") + "\n" + outcome + "\n"
            if !kept.console.isEmpty {
                text += "\n--- the builder guest's console ---\n" + kept.console
                if !kept.console.hasSuffix("\n") { text += "\n" }
            }
            return text
        }
        do {
            try AtomicOutput.write(text, to: "\(directory)/build.log")
        } catch {
            progress(.warning("log", "cannot write \(directory)/build.log: \(error)"))
        }
    }
}
