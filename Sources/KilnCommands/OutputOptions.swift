import ArgumentParser

/// `--json`, shared by every long command.
struct ProgressOptions: ParsableArguments {
    @Flag(name: .long, help: "Print progress events and the result as JSON lines on stdout.")
    var json = false

    func console() -> Console { Console(json: json) }
}
