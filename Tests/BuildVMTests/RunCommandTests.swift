import Foundation
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension BootTests {
    /// `kiln run` as a person uses it, in a tmux terminal: the console is the terminal, keys reach the
    /// guest, the SSH port is forwarded on loopback, Ctrl-a x quits.
    @Suite(
        "kiln run, in a terminal",
        .requires(
            KilnProgram.path != nil && Fixtures.tool("qemu-system-x86_64") && TmuxSession.isAvailable,
            "the kiln binary, qemu-system-x86_64 and tmux"))
    struct RunCommandTests {
        @Test("the console takes keys, SSH is forwarded to a printed port, Ctrl-a x quits")
        func consoleOnTheTerminal() async throws {
            let work = try Fixtures.temporaryDirectory("run")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialPromptDisk(at: "\(work)/disk.img", prompt: "Password: ", answer: "\r\nwelcome to the guest\r\n")
            let kiln = try #require(KilnProgram.path)
            let tmux = try TmuxSession("'\(kiln)' run '\(work)/disk.img' --accel tcg; echo \"kiln-exit=$?\"")
            #expect(await tmux.wait(for: "Password: ", timeout: .seconds(60)), "\(tmux.lastLines())")
            let screen = tmux.screen()
            #expect(screen.contains("Ctrl-a x quits"), "\(screen)")
            let port = screen.split(separator: "\n").compactMap { line -> Int? in
                guard let range = line.range(of: "ssh -p ") else { return nil }
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }.first
            let sshPort = try #require(port, "no SSH port printed:\n\(screen)")
            // QEMU listens there, on loopback only.
            let (_, sockets) = try await shell("ss -Hltn 'sport = :\(sshPort)'")
            #expect(sockets.contains("127.0.0.1:\(sshPort)"), "\(sockets)")
            #expect(!sockets.contains("*:\(sshPort)") && !sockets.contains("0.0.0.0:\(sshPort)"), "\(sockets)")

            try tmux.send("secret", literal: true)
            // This small guest waits for a line feed; a terminal's Enter sends a carriage return.
            try tmux.send("C-j")
            #expect(await tmux.wait(for: "welcome to the guest", timeout: .seconds(30)), "\(tmux.lastLines())")

            try tmux.send("C-a")
            try tmux.send("x", literal: true)
            #expect(await tmux.wait(for: "kiln-exit=0", timeout: .seconds(30)), "\(tmux.lastLines())")
            #expect(tmux.screen().contains("kiln: QEMU ended"), "\(tmux.lastLines())")
            // The image was not written.
            let written = try Data(contentsOf: URL(fileURLWithPath: "\(work)/disk.img"))
            try serialPromptDisk(at: "\(work)/fresh.img", prompt: "Password: ", answer: "\r\nwelcome to the guest\r\n")
            #expect(written == (try Data(contentsOf: URL(fileURLWithPath: "\(work)/fresh.img"))))
        }

        private func shell(_ command: String) async throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", command]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }
}
