import Appliance
import ArgumentParser
import Foundation
import KilnSupport

/// The `kiln` command: parses arguments, runs one subcommand, prints errors, and exits with the
/// documented codes (0 success, 1 the input or the work failed, 2 usage error).
package enum KilnCLI {
    package static func main() async {
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
    package static func run(_ arguments: [String]) async -> Int32 {
        _ = Console.started
        var arguments = arguments
        // Global options, before or after the command (not after `--`, which ends the options).
        let globals: Set<String> = ["--quiet", "-q", "--verbose"]
        let end = arguments.firstIndex(of: "--") ?? arguments.endIndex
        for option in arguments[..<end] where globals.contains(option) {
            Console.level = option == "--verbose" ? .verbose : .quiet
        }
        arguments = arguments[..<end].filter { !globals.contains($0) } + arguments[end...]
        if let unknown = unknownCommand(arguments) { return unknown }
        let json = arguments.contains("--json")
        let command: ParsableCommand
        do {
            command = try Kiln.parseAsRoot(arguments)
        } catch {
            return report(error, json: json)
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
            return report(error, json: json)
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
        if arguments.contains("--json") { Console(json: true).event("error", ErrorLine(exitCode: 2, messages: lines)) }
        return 2
    }

    /// Prints the error on stderr and, with `--json`, as one `{"event": "error", ...}` object on stdout
    /// too, so that a program reading stdout learns why there is no result.
    private static func report(_ error: Error, json: Bool) -> Int32 {
        if Interruption.received != nil { return 1 }
        let (lines, code) = describe(error)
        if code == 0 {
            for line in lines { print(line) }
            return 0
        }
        for line in lines { Console.standardError.write(line) }
        if json {
            Console(json: true).event("error", ErrorLine(exitCode: code, messages: lines))
        }
        return code
    }

    /// The lines to print for `error`, and the exit code.
    private static func describe(_ error: Error) -> (lines: [String], code: Int32) {
        switch error {
        case let failure as CommandFailure:
            return (failure.lines, failure.exitCode)
        case let failure as SubprocessError:
            return (["kiln: error: \(failure)"], 1)
        case let failure as OutputError:
            return (["kiln: error: \(failure)"], 1)
        default:
            let code = Kiln.exitCode(for: error)
            let message = Kiln.fullMessage(for: error)
            let lines = message.isEmpty ? [] : [message]
            if code == .success { return (lines, 0) }
            // ArgumentParser reports usage errors as EX_USAGE (64); kiln's contract says 2.
            return (lines, code == .validationFailure ? 2 : code.rawValue == 64 ? 2 : 1)
        }
    }
}

/// An error the command layer has already worded for the user.
package struct CommandFailure: Error {
    /// Lines for standard error, each complete (`kiln: error: ...` or `FILE:LINE:COL: error: ...`).
    package var lines: [String]
    package var exitCode: Int32

    package init(lines: [String], exitCode: Int32 = 1) {
        self.lines = lines
        self.exitCode = exitCode
    }

    /// A single `kiln: error: MESSAGE` line, with an optional hint on the next line.
    package init(_ message: String, hint: String? = nil, exitCode: Int32 = 1) {
        var lines = ["kiln: error: \(message)"]
        if let hint { lines.append("kiln: hint: \(hint)") }
        self.init(lines: lines, exitCode: exitCode)
    }
}
