import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs one program: argv without a shell, a minimal environment, its own process group, output to a
/// log file (or a pipe the caller reads), and SIGTERM then SIGKILL when it must stop.
///
/// Every program kiln starts (QEMU, gpgv, qemu-img in tests) goes through this type, so that how a
/// child is started, stopped and reported is decided in one place.
package final class Subprocess: @unchecked Sendable {
    // @unchecked: the pipe handles are set once, by `start`, before anyone reads them; `child` is a
    // mutex; the rest is immutable after init.

    /// Where the child's standard output and error go.
    package enum Output: Sendable {
        /// Both streams appended to this file.
        case logFile(String)
        /// Both streams into a pipe; read it from `outputHandle`.
        case pipe
        /// Both streams discarded.
        case discard
    }

    /// How a finished child ended.
    package enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        package var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signalled(let signal): return "signal \(signal)"
            }
        }

        package var succeeded: Bool { self == .exited(0) }
    }

    package let arguments: [String]
    package let environment: [String: String]
    package let output: Output
    /// Whether the child's standard input is a pipe (`inputHandle`) rather than /dev/null.
    package let writableInput: Bool
    /// The read end of the output pipe when `output` is `.pipe`.
    package private(set) var outputHandle: FileHandle?
    /// The write end of the input pipe when `writableInput` is set.
    package private(set) var inputHandle: FileHandle?

    /// The child's pid once started, and how it ended once reaped.
    private let child = Mutex<(pid: pid_t, status: Termination?)>((0, nil))

    /// The variables a child sees unless the caller adds more: enough to find programs and speak C.
    package static var minimalEnvironment: [String: String] {
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"]
        if let home = ProcessInfo.processInfo.environment["HOME"] { env["HOME"] = home }
        if let tmp = ProcessInfo.processInfo.environment["TMPDIR"] { env["TMPDIR"] = tmp }
        return env
    }

    /// - Parameters:
    ///   - arguments: the program (a path, or a name looked up in `environment["PATH"]`) and its arguments.
    ///   - environment: the child's whole environment.
    ///   - output: where standard output and error go.
    ///   - writableInput: standard input from a pipe the caller writes to (`inputHandle`), not /dev/null.
    package init(
        _ arguments: [String],
        environment: [String: String] = Subprocess.minimalEnvironment,
        output: Output = .discard,
        writableInput: Bool = false
    ) {
        precondition(!arguments.isEmpty, "a subprocess needs a program")
        self.arguments = arguments
        self.environment = environment
        self.output = output
        self.writableInput = writableInput
    }

    /// The command as a user could paste it into a shell.
    package var commandLine: String { arguments.map(ShellQuote.quote).joined(separator: " ") }

    /// The child's process id, once started.
    package var processID: pid_t { child.withLock { $0.pid } }

    /// Starts the child in a new process group. Standard input is /dev/null unless `writableInput`.
    package func start() throws(SubprocessError) {
        guard let program = Self.resolve(arguments[0], path: environment["PATH"]) else {
            throw SubprocessError(command: commandLine, reason: "program not found: \(arguments[0])")
        }
        var inputPipe: PipeEnds?
        if writableInput {
            do {
                inputPipe = try Self.closeOnExecPipe()
            } catch {
                throw SubprocessError(command: commandLine, reason: "pipe: \(error)")
            }
        }
        var outputPipe: PipeEnds?
        if case .pipe = output {
            do {
                outputPipe = try Self.closeOnExecPipe()
            } catch {
                try? inputPipe?.readEnd.close()
                try? inputPipe?.writeEnd.close()
                throw SubprocessError(command: commandLine, reason: "pipe: \(error)")
            }
        }
        let (executable, argv) = Self.dyingWithKiln(program, arguments)
        let (input, outputFD, output) = (inputPipe?.readEnd.rawValue ?? -1, outputPipe?.writeEnd.rawValue ?? -1, output)
        let environment = environment
        let (rc, child) = SpawnThread.shared.run { [executable, argv] in
            Self.spawn(executable, argv, environment: environment, input: input, output: output, outputPipe: outputFD)
        }
        // The child holds its own copies of these ends now.
        try? outputPipe?.writeEnd.close()
        try? inputPipe?.readEnd.close()
        guard rc == 0 else {
            try? outputPipe?.readEnd.close()
            try? inputPipe?.writeEnd.close()
            throw SubprocessError(command: commandLine, reason: "cannot start: \(Errno(rawValue: rc))")
        }
        if let outputPipe {
            outputHandle = FileHandle(fileDescriptor: outputPipe.readEnd.rawValue, closeOnDealloc: true)
        }
        if let inputPipe {
            inputHandle = FileHandle(fileDescriptor: inputPipe.writeEnd.rawValue, closeOnDealloc: true)
        }
        self.child.withLock { $0.pid = child }
    }

    private typealias PipeEnds = (readEnd: FileDescriptor, writeEnd: FileDescriptor)

    /// A pipe whose ends no other child inherits: neither may leak into children started meanwhile.
    private static func closeOnExecPipe() throws -> PipeEnds {
        let ends = try FileDescriptor.pipe()
        // No fcntl in swift-system; its pipe(options: .closeOnExec) needs pipe2, which Darwin has only
        // from macOS 27.
        _ = fcntl(ends.readEnd.rawValue, F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends.writeEnd.rawValue, F_SETFD, FD_CLOEXEC)
        return ends
    }

    /// util-linux's setpriv (Essential in Debian), which starts a program with a parent-death signal;
    /// without it children are started directly and outlive a killed kiln.
    static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// What to start so that `program` (resolved) dies with kiln: setpriv sets its parent-death signal
    /// and execs it. Start it from `SpawnThread`; without setpriv, the program itself.
    package static func dyingWithKiln(_ program: String, _ arguments: [String]) -> (executable: String, argv: [String])
    {
        guard let setpriv else { return (program, arguments) }
        return (setpriv, [setpriv, "--pdeathsig", "KILL", "--", program] + arguments.dropFirst())
    }

    /// posix_spawn with the child's standard streams, process group and signals set; on SpawnThread.
    /// Returns posix_spawn's result and the child's pid.
    private static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], input: Int32, output: Output,
        outputPipe: Int32
    ) -> (Int32, pid_t) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input >= 0 {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        switch output {
        case .logFile(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .pipe:
            posix_spawn_file_actions_adddup2(&actions, outputPipe, 1)
            posix_spawn_file_actions_adddup2(&actions, outputPipe, 2)
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A process group of its own, so that stopping it reaches everything it started, and a
        // terminal's ^C reaches kiln first, which then stops the child in order.
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        sigaddset(&defaultSignals, SIGINT)
        sigaddset(&defaultSignals, SIGTERM)
        sigaddset(&defaultSignals, SIGPIPE)
        // kiln catches these to clean up; a child gets their default actions back.
        for caught in [SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&defaultSignals, caught) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        return (rc, child)
    }

    /// Waits for the child to end: a thread of its own blocks until then, so that no thread of the
    /// shared pool is held and nothing polls.
    package func wait() async -> Termination {
        if let done = poll() { return done }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiter = Thread { [self] in
                awaitExit()
                continuation.resume()
            }
            waiter.name = "kiln-wait"
            waiter.start()
        }
        return waitBlocking()
    }

    /// Waits for the child, blocking the calling thread.
    package func waitBlocking() -> Termination {
        // Never started (its start threw): 127, as a shell reports a program it could not run.
        guard processID > 0 else { return .exited(127) }
        while true {
            if let done = poll() { return done }
            awaitExit()
        }
    }

    /// Blocks until the child has ended without reaping it (`poll` does), so that no lock is held
    /// meanwhile: `killNow`, from the signal path, must always get through.
    private func awaitExit() {
        let pid = processID
        guard pid > 0 else { return }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
    }

    /// The child's termination if it has ended, without waiting.
    package func poll() -> Termination? {
        child.withLock { child in
            if let status = child.status { return status }
            guard child.pid > 0 else { return nil }
            var raw: Int32 = 0
            let rc = waitpid(child.pid, &raw, WNOHANG)
            guard rc == child.pid else { return nil }
            let ended = Self.decode(raw)
            child.status = ended
            return ended
        }
    }

    /// Stops the child's whole process group: SIGTERM, then SIGKILL after `grace`.
    @discardableResult
    package func stop(grace: Duration = .seconds(3)) async -> Termination {
        if let done = poll() { return done }
        let group = processID
        signalGroup(group, SIGTERM)
        let escalation = Task { [self] in
            try? await Task.sleep(for: grace)
            if !Task.isCancelled && poll() == nil { signalGroup(group, SIGKILL) }
        }
        let ended = await wait()
        escalation.cancel()
        return ended
    }

    /// Stops the child's process group at once, from any thread (a signal handler's path).
    package func killNow() {
        let group = processID
        if group > 0 && poll() == nil { signalGroup(group, SIGKILL) }
    }

    /// Runs to the end and throws, with the command and how it ended, unless it exits 0.
    package func run() async throws(SubprocessError) {
        try start()
        let ended = await wait()
        guard ended.succeeded else {
            throw SubprocessError(command: commandLine, reason: "ended with \(ended)", logPath: logPath)
        }
    }

    /// Runs to the end and returns what it printed (standard output and error together).
    package static func output(
        _ arguments: [String], environment: [String: String] = Subprocess.minimalEnvironment
    ) async throws(SubprocessError) -> (Termination, String) {
        let child = Subprocess(arguments, environment: environment, output: .pipe)
        try child.start()
        guard let handle = child.outputHandle else {
            throw SubprocessError(command: child.commandLine, reason: "no output pipe")
        }
        // Read on a thread of its own: a blocking read must not hold one of the shared pool's threads.
        let data = await withCheckedContinuation { (continuation: CheckedContinuation<Data, Never>) in
            let reader = Thread { continuation.resume(returning: handle.readDataToEndOfFile()) }
            reader.name = "kiln-output"
            reader.start()
        }
        let ended = await child.wait()
        return (ended, String(decoding: data, as: UTF8.self))
    }

    private var logPath: String? {
        if case .logFile(let path) = output { return path }
        return nil
    }

    private static func decode(_ raw: Int32) -> Termination {
        let signal = raw & 0x7f
        if signal == 0 { return .exited((raw >> 8) & 0xff) }
        return .signalled(signal)
    }

    package static func resolve(_ program: String, path: String?) -> String? {
        if program.contains("/") { return program }
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

private func signalGroup(_ group: pid_t, _ signal: Int32) {
    if group > 0 { kill(-group, signal) }
}

/// A child that could not start or did not succeed.
package struct SubprocessError: Error, CustomStringConvertible {
    /// The shell-quoted command.
    package var command: String
    package var reason: String
    /// The log file that holds what the child printed, if there is one.
    package var logPath: String?

    package init(command: String, reason: String, logPath: String? = nil) {
        self.command = command
        self.reason = reason
        self.logPath = logPath
    }

    package var description: String {
        var text = "\(command): \(reason)"
        if let logPath { text += " (log: \(logPath))" }
        return text
    }
}
