import Foundation
import KilnSupport
import Testing

@testable import Builder

/// `build.log`: the steps with their times, the outcome, and the guest's console as a person reads it.
@Suite struct BuildLogTests {
    @Test func stepsOutcomeAndTheConsoleWithoutTheProtocolsLines() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-buildlog-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = BuildLog()
        let sink = log.recording(to: .none)
        sink(.step("guest", "booting the builder guest (tcg)"))
        sink(.progress("guest", completed: 5, total: 10))
        sink(.warning("base", "the base was not kept"))
        // A serial console: CR LF line ends, protocol lines and heartbeats among the job's output.
        let console = "KILN:1:init:up\r\nSetting up openssh-server (1:10.0p1-7) ...\r\nKILN:0:alive:\r\npost marker\r\n"
        try Data(console.utf8)
            .write(to: URL(fileURLWithPath: "\(folder)/guest.log"))
        log.keepConsole(from: ["\(folder)/guest.log"])
        log.write(to: folder, outcome: "built demo", progress: .none)
        let text = try String(contentsOfFile: "\(folder)/build.log", encoding: .utf8)
        #expect(
            text == """
                [0:00] booting the builder guest (tcg)
                [0:00] warning: the base was not kept
                built demo

                --- the builder guest's console ---
                Setting up openssh-server (1:10.0p1-7) ...
                post marker

                """, "\(text)")
    }
}
