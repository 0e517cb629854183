/// What long work tells the person or program waiting for it. Libraries emit these through a
/// `ProgressSink`; only the command layer turns them into a terminal bar or JSON lines.
package struct ProgressEvent: Sendable, Equatable {
    package enum Kind: String, Sendable {
        /// A new step begins; `message` names it.
        case step
        /// Units of the current step are done: `completed` of `total` (bytes, packages, blocks).
        case progress
        /// Something worth a line of its own.
        case info
        /// Something the user should know about but that does not stop the work.
        case warning
    }

    package var kind: Kind
    /// A short machine name of the step ("download", "guest", "convert").
    package var phase: String
    package var message: String
    package var completed: Int64
    package var total: Int64?

    package init(kind: Kind, phase: String, message: String = "", completed: Int64 = 0, total: Int64? = nil) {
        self.kind = kind
        self.phase = phase
        self.message = message
        self.completed = completed
        self.total = total
    }

    package static func step(_ phase: String, _ message: String) -> ProgressEvent {
        ProgressEvent(kind: .step, phase: phase, message: message)
    }

    package static func progress(_ phase: String, completed: Int64, total: Int64?) -> ProgressEvent {
        ProgressEvent(kind: .progress, phase: phase, completed: completed, total: total)
    }

    package static func info(_ phase: String, _ message: String) -> ProgressEvent {
        ProgressEvent(kind: .info, phase: phase, message: message)
    }

    package static func warning(_ phase: String, _ message: String) -> ProgressEvent {
        ProgressEvent(kind: .warning, phase: phase, message: message)
    }
}

/// Where progress goes. A closure so that libraries need no knowledge of terminals or JSON.
package struct ProgressSink: Sendable {
    private let emit: @Sendable (ProgressEvent) -> Void

    package init(_ emit: @escaping @Sendable (ProgressEvent) -> Void) {
        self.emit = emit
    }

    package func callAsFunction(_ event: ProgressEvent) { emit(event) }

    /// A sink that drops everything (tests, quiet callers).
    package static let none = ProgressSink { _ in }
}
