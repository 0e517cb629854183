import Foundation
import KilnTestSupport
import Testing

/// The README's quick start, last step: `kiln run` the demo image and log in on its console as root with
/// the password in Appliances/debian-minimal.yaml; its SSH server answers on the port kiln printed.
@Suite(
    .serialized,
    .requires(BuildFixture.canRun && TmuxSession.isAvailable, "what the build needs, and tmux"))
struct RunLoginTests {
    @Test func logInToTheDemoImage() async throws {
        let build = try await BuildFixture.shared.build()
        let password = try Self.password(of: "\(KilnProgram.packageRoot)/Appliances/debian-minimal.yaml")
        try await Self.logIn(image: "\(build.output)/debian-minimal.qcow2", password: password)
    }

    /// `os.password` as the description writes it.
    static func password(of description: String) throws -> String {
        let text = try String(contentsOfFile: description, encoding: .utf8)
        let line = text.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("password:") }
        let value = line.map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) }
        return try #require(value, "no password in \(description)")
    }

    /// Boots `image` with `kiln run` in a terminal, logs in as root, runs a command, checks the
    /// forwarded SSH port, and quits with Ctrl-a x.
    static func logIn(image: String, password: String) async throws {
        let kiln = try #require(KilnProgram.path)
        let tmux = try TmuxSession("'\(kiln)' run '\(image)' --accel tcg; echo \"kiln-exit=$?\"")
        // About 90 s here under TCG; a CI machine with other work running can take several times that.
        #expect(await tmux.wait(for: "login:", timeout: .seconds(900)), "no login prompt:\n\(tmux.lastLines())")
        try tmux.send("root", literal: true)
        try tmux.send("Enter")
        #expect(await tmux.wait(for: "Password:", timeout: .seconds(60)), "\(tmux.lastLines())")
        try tmux.send(password, literal: true)
        try tmux.send("Enter")
        // A shell: the command's output, not its echo, holds the product.
        try await Task.sleep(for: .seconds(5))
        try tmux.send("echo kiln-run-$((6 * 7))", literal: true)
        try tmux.send("Enter")
        #expect(await tmux.wait(for: "kiln-run-42", timeout: .seconds(120)), "not logged in:\n\(tmux.lastLines())")

        let screen = tmux.screen()
        let port = screen.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "ssh -p ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.first
        let sshPort = try #require(port, "no SSH port printed")
        // sshd makes its host keys at first boot, which under TCG on a loaded machine can finish well
        // after the console's login; QEMU accepts on the forwarded port before the guest listens.
        #expect(
            try await sshBanner(port: sshPort, within: .seconds(300)).hasPrefix("SSH-2.0-OpenSSH"),
            "the guest's sshd does not answer")

        try tmux.send("C-a")
        try tmux.send("x", literal: true)
        #expect(await tmux.wait(for: "kiln-exit=0", timeout: .seconds(60)), "\(tmux.lastLines())")
    }

    /// The first line an SSH server sends on 127.0.0.1:`port`, asking again until one comes or
    /// `limit` passes.
    static func sshBanner(port: Int, within limit: Duration) async throws -> String {
        let deadline = ContinuousClock.now + limit
        var banner = try sshBanner(port: port)
        while !banner.hasPrefix("SSH-"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(5))
            banner = try sshBanner(port: port)
        }
        return banner
    }

    /// The first line an SSH server sends on 127.0.0.1:`port`.
    static func sshBanner(port: Int) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port) && timeout 30 head -n 1 <&3"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
