import Foundation
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension BootTests {
    @Suite(
        "kiln test, the command",
        .requires(.kilnBinary, .program("qemu-system-x86_64")))
    struct TestCommandTests {
        func launch(_ arguments: [String]) throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: KilnProgram.path ?? "kiln")
            process.arguments = arguments
            let err = Pipe()
            process.standardError = err
            process.standardOutput = Pipe()
            try process.run()
            return (process, err)
        }

        @Test("exit 1 and the console's tail when the prompt never comes")
        func failurePrintsTail() throws {
            let work = try Fixtures.temporaryDirectory("cmd")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.img", printing: "Kernel panic - not syncing: a pretend panic\r\n")
            let (process, err) = try launch(["test", "\(work)/disk.img", "--timeout", "10"])
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 1)
            #expect(text.contains("did not appear on the console within 10 s"))
            #expect(text.contains("  | Kernel panic - not syncing: a pretend panic"))
        }

        @Test("--machine names the hardware in the result; an unknown one is a usage error")
        func machineOption() throws {
            let work = try Fixtures.temporaryDirectory("cmd")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.img", printing: "\r\nkiln-test login: ")
            let (code, out, err) = try KilnProgram.run([
                "test", "\(work)/disk.img", "--machine", "virtualbox", "--json",
            ])
            #expect(code == 0, "\(err)")
            let result = out.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.last { $0["event"] as? String == "result" }
            #expect(result?["machine"] as? String == "virtualbox", "\(out)")
            let (bad, _, badErr) = try KilnProgram.run(["test", "\(work)/disk.img", "--machine", "esx"])
            #expect(bad == 2, "\(badErr)")
        }

        @Test("SIGINT stops QEMU: kiln exits 130 and leaves no QEMU and no scratch files")
        func interruptLeavesNothing() async throws {
            let work = try Fixtures.temporaryDirectory("cmd")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.img", printing: "waiting forever\r\n")
            // UEFI when there is OVMF: its variable store copy must go too.
            let uefi = FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE.fd")
            let (process, _) = try launch(
                ["test", "\(work)/disk.img", "--timeout", "120", "--firmware", uefi ? "uefi" : "bios"])
            var qemu: [pid_t] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while qemu.isEmpty && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                qemu = KilnProgram.children(of: process.processIdentifier)
            }
            #expect(!qemu.isEmpty, "kiln started no QEMU")
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            #expect(process.terminationStatus == 130)
            let scratch = NSTemporaryDirectory() + "kiln-test-\(process.processIdentifier)"
            #expect(!FileManager.default.fileExists(atPath: scratch), "\(scratch) was left behind")
            for pid in qemu {
                // Reaped by kiln or, once kiln has exited, by init: either way it must be gone.
                var gone = false
                for _ in 0..<100 where !gone {
                    gone = kill(pid, 0) == -1 && errno == ESRCH
                    if !gone { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(gone, "QEMU \(pid) still runs")
            }
        }
    }
}
