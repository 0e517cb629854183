import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A detached tmux session running one command in a terminal of its own: what a person sees
/// (`capture-pane`) and types (`send-keys`), for tests of kiln's interactive commands.
package final class TmuxSession: @unchecked Sendable {
    // @unchecked: immutable after init; tmux itself serialises the session.
    package let name: String

    package static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    /// Starts `command` (a shell command line) in a 160x50 terminal.
    package init(_ command: String) throws {
        name = "kiln-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.tmux(["new-session", "-d", "-s", name, "-x", "160", "-y", "50", command])
        // Keep the pane after the command ends, so that its last words can be read.
        try Self.tmux(["set-option", "-t", name, "remain-on-exit", "on"])
        try Self.tmux(["set-option", "-t", name, "history-limit", "100000"])
    }

    deinit { _ = try? Self.tmux(["kill-session", "-t", name]) }

    /// Everything the pane shows and has scrolled away, as text.
    package func screen() -> String {
        (try? Self.tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", name])) ?? ""
    }

    /// The last `count` lines of `screen()`, for a failure message: a boot's console is thousands of
    /// lines, and where it stopped is what the reader needs (a CI log keeps the ends of long output).
    package func lastLines(_ count: Int = 40) -> String {
        screen().split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
    }

    /// Types `keys` (tmux key names: "Enter", "C-a", or literal text with `literal`).
    package func send(_ keys: String, literal: Bool = false) throws {
        try Self.tmux(["send-keys", "-t", name] + (literal ? ["-l", keys] : [keys]))
    }

    /// Waits until `text` appears on the screen after `after` occurrences of it; false on timeout.
    @discardableResult
    package func wait(for text: String, occurrence: Int = 1, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if screen().components(separatedBy: text).count - 1 >= occurrence { return true }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    /// Runs tmux and returns what it printed. Spawned and awaited by its own pid (waitpid), its output
    /// going to a file: the first `new-session` starts tmux's server, which keeps the client's
    /// descriptors (a pipe would never reach end of file), and in a test process where other tests have
    /// run, Foundation's `Process` left the exited client unreaped and `waitUntilExit` never returned
    /// (both hung the suite when no tmux server ran yet, as in CI).
    @discardableResult
    private static func tmux(_ arguments: [String]) throws -> String {
        let output = NSTemporaryDirectory() + "kiln-tmux-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = (["tmux"] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/usr/bin/tmux", &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSDebugDescriptionErrorKey: "tmux: posix_spawn \(spawned)"])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }
}
