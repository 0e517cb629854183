import Appliance
import ArgumentParser
import Foundation
import KilnSupport

/// The `kiln` command: parses arguments, runs one subcommand, prints errors, and exits with the
/// documented codes (0 success, 1 the input or the work failed, 2 usage error).
public enum KilnCLI {
    public static func main() async {
        Interruption.install()
        let code = await run(Array(CommandLine.arguments.dropFirst()))
        AtomicOutput.discardAll()
        if let signal = Interruption.received {
            // The handler is stopping children and will exit; its code wins over the failure that
            // stopping them caused here.
            Console.standardError.write("kiln: interrupted")
            exit(128 + signal)
        }
        exit(code)
    }

    /// Runs kiln with `arguments` (without the program name) and returns the exit code.
    public static func run(_ arguments: [String]) async -> Int32 {
        var arguments = arguments
        // Global options come before the command.
        while let first = arguments.first, ["--quiet", "-q", "--verbose"].contains(first) {
            Console.level = first == "--verbose" ? .verbose : .quiet
            arguments.removeFirst()
        }
        if let unknown = unknownCommand(arguments) { return unknown }
        let command: ParsableCommand
        do {
            command = try Kiln.parseAsRoot(arguments)
        } catch {
            return report(error)
        }
        do {
            var command = command
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            return 0
        } catch {
            return report(error)
        }
    }

    /// A first argument that names no command: exit 2 with the closest command's name.
    private static func unknownCommand(_ arguments: [String]) -> Int32? {
        guard let first = arguments.first, !first.hasPrefix("-"), first != "help" else { return nil }
        let names = Kiln.configuration.subcommands.compactMap { $0.configuration.commandName }
        guard !names.contains(first) else { return nil }
        var lines = ["kiln: error: unknown command '\(first)'"]
        // Two letters swapped ("biuld") count as one typo too.
        if let suggestion = closest(to: first, in: names) ?? names.first(where: { $0.sorted() == first.sorted() }) {
            lines[0] += "; did you mean '\(suggestion)'?"
        } else {
            lines.append("kiln: hint: the commands are \(names.joined(separator: ", "))")
        }
        for line in lines { Console.standardError.write(line) }
        return 2
    }

    private static func report(_ error: Error) -> Int32 {
        if Interruption.received != nil { return 1 }
        switch error {
        case let failure as CommandFailure:
            for line in failure.lines { Console.standardError.write(line) }
            return failure.exitCode
        case let failure as SubprocessError:
            Console.standardError.write("kiln: error: \(failure)")
            return 1
        case let failure as OutputError:
            Console.standardError.write("kiln: error: \(failure)")
            return 1
        default:
            let code = Kiln.exitCode(for: error)
            let message = Kiln.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                return 0
            }
            if !message.isEmpty { Console.standardError.write(message) }
            // ArgumentParser reports usage errors as EX_USAGE (64); kiln's contract says 2.
            return code == .validationFailure ? 2 : code.rawValue == 64 ? 2 : 1
        }
    }
}

/// An error the command layer has already worded for the user.
public struct CommandFailure: Error {
    /// Lines for standard error, each complete (`kiln: error: ...` or `FILE:LINE:COL: error: ...`).
    public var lines: [String]
    public var exitCode: Int32

    public init(lines: [String], exitCode: Int32 = 1) {
        self.lines = lines
        self.exitCode = exitCode
    }

    /// A single `kiln: error: MESSAGE` line, with an optional hint on the next line.
    public init(_ message: String, hint: String? = nil, exitCode: Int32 = 1) {
        var lines = ["kiln: error: \(message)"]
        if let hint { lines.append("kiln: hint: \(hint)") }
        self.init(lines: lines, exitCode: exitCode)
    }
}
