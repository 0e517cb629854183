import Foundation

/// A detached tmux session running one command in a terminal of its own: what a person sees
/// (`capture-pane`) and types (`send-keys`), for tests of kiln's interactive commands.
public final class TmuxSession: @unchecked Sendable {
    // @unchecked: immutable after init; tmux itself serialises the session.
    public let name: String

    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    /// Starts `command` (a shell command line) in a 160x50 terminal.
    public init(_ command: String) throws {
        name = "kiln-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.tmux(["new-session", "-d", "-s", name, "-x", "160", "-y", "50", command])
        // Keep the pane after the command ends, so that its last words can be read.
        try Self.tmux(["set-option", "-t", name, "remain-on-exit", "on"])
        try Self.tmux(["set-option", "-t", name, "history-limit", "100000"])
    }

    deinit { _ = try? Self.tmux(["kill-session", "-t", name]) }

    /// Everything the pane shows and has scrolled away, as text.
    public func screen() -> String {
        (try? Self.tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", name])) ?? ""
    }

    /// Types `keys` (tmux key names: "Enter", "C-a", or literal text with `literal`).
    public func send(_ keys: String, literal: Bool = false) throws {
        try Self.tmux(["send-keys", "-t", name] + (literal ? ["-l", keys] : [keys]))
    }

    /// Waits until `text` appears on the screen after `after` occurrences of it; false on timeout.
    @discardableResult
    public func wait(for text: String, occurrence: Int = 1, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if screen().components(separatedBy: text).count - 1 >= occurrence { return true }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    /// Runs tmux; only `capture-pane` gives output. The first `new-session` starts tmux's server,
    /// which keeps whatever descriptors the client had: a pipe for its output would then never reach
    /// end of file (a test hung on that when no tmux server ran yet, as in CI).
    @discardableResult
    private static func tmux(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/tmux")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard arguments.first == "capture-pane" else {
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return ""
        }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
