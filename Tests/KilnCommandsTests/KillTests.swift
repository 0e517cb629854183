import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `kill -9` gives kiln no chance to clean up. What it leaves must still be harmless: no output under
/// its final name, no QEMU running on (children die with kiln: SpawnThread), and the next run removes
/// the hidden partial files and succeeds.
@Suite(.serialized, .requires(KilnProgram.isBuilt, "the kiln binary"))
struct KillTests {
    private func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "kiln-kill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func names(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// A disk that SeaBIOS boots into a loop (`jmp $`): QEMU runs until something stops it.
    private func spinningDisk(_ path: String) throws {
        var sector = [UInt8](repeating: 0, count: 1 << 20)
        sector[0] = 0xEB
        sector[1] = 0xFE
        sector[510] = 0x55
        sector[511] = 0xAA
        try Data(sector).write(to: URL(fileURLWithPath: path))
    }

    @Test(.requires(.program("qemu-system-x86_64")))
    func killedKilnTestTakesItsQEMUWithIt() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try spinningDisk(dir + "/spin.raw")
        let process = KilnProgram.process(["test", "spin.raw", "--accel", "tcg", "--timeout", "120"], cwd: dir)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let kiln = process.processIdentifier
        // setpriv execs QEMU in place: the child of kiln becomes qemu-system-x86_64.
        var qemu: pid_t?
        let deadline = ContinuousClock.now + .seconds(30)
        while qemu == nil && process.isRunning && ContinuousClock.now < deadline {
            qemu = ProcessTable.child(of: kiln, running: "qemu-system")
            if qemu == nil { usleep(50_000) }
        }
        let started = try #require(qemu, "kiln test started no QEMU")
        usleep(500_000)
        kill(kiln, SIGKILL)
        // The orphan is killed as its parent dies; give the kernel a moment. (Foundation's wait for kiln
        // would last as long as a surviving QEMU, so it comes after.)
        let survived = !ProcessTable.waitForEnd(of: started, seconds: 5)
        if survived { kill(started, SIGKILL) }
        process.waitUntilExit()
        #expect(!survived, "QEMU \(started) outlived kill -9 of kiln test")
    }

    /// kill -9 at random points of a conversion: never an output under its final name, and the next
    /// conversion to the same name removes the dead one's hidden file and succeeds.
    @Test func killedConvertLeavesNoOutputAndTheNextRunSucceeds() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TestData.writeRandom(mebibytes: 64, to: dir + "/in.raw")
        var killedMidway = 0
        for _ in 0..<4 {
            // A conversion that finished before its kill leaves a complete output: start each try without it.
            unlink(dir + "/out.qcow2")
            let process = KilnProgram.process(
                ["convert", "in.raw", "out.qcow2", "--compress", "--compression-level", "9"], cwd: dir)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32.random(in: 20_000...600_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killedMidway += 1 }
            let finished = process.terminationReason == .exit && process.terminationStatus == 0
            #expect(finished || !names(dir).contains("out.qcow2"), "a killed conversion's output: \(names(dir))")
        }
        #expect(killedMidway > 0, "every conversion ended before its kill")
        let (code, _, err) = try KilnProgram.run(["convert", "in.raw", "out.qcow2"], cwd: dir)
        #expect(code == 0, "\(err)")
        #expect(names(dir) == ["in.raw", "out.qcow2"], "left behind: \(names(dir))")
        let (same, comparison) = try await Subprocess.output([
            "qemu-img", "compare", dir + "/in.raw", dir + "/out.qcow2",
        ])
        #expect(same.succeeded, "\(comparison)")
    }
}

/// A full disk in the middle of a conversion: a clear error, exit 1, and nothing left in the folder.
/// The disk is an 8 MiB tmpfs mounted in a mount namespace of the test's own (`unshare -m`), which the
/// host never sees.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"), .requires(.root, .program("unshare")))
struct FullDiskTests {
    @Test func fullDiskDuringConvertIsAClearErrorAndLeavesNothing() async throws {
        let kiln = try #require(KilnProgram.path)
        let dir = NSTemporaryDirectory() + "kiln-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/small", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TestData.writeRandom(mebibytes: 32, to: dir + "/in.raw")
        let script = """
            mount -t tmpfs -o size=8m kiln-full "$1/small" || exit 99
            "$2" convert "$1/in.raw" "$1/small/out.qcow2"
            echo "exit=$?"
            ls -A "$1/small"
            """
        let (ended, output) = try await Subprocess.output(["unshare", "-m", "sh", "-c", script, "sh", dir, kiln])
        #expect(ended.succeeded, "\(output)")
        #expect(output.contains("kiln: error: cannot write "), "\(output)")
        #expect(output.contains("No space left on device"), "\(output)")
        let after = output.split(separator: "\n").drop { !$0.hasPrefix("exit=") }
        #expect(Array(after) == ["exit=1"], "the exit code and what is left in the full folder:\n\(output)")
    }
}
