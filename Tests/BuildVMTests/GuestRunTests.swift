import Foundation
import KilnSupport
import KilnTestSupport
import Synchronization
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

extension BootTests {
    @Suite(
        "builder guest under QEMU (TCG)", .requires(Fixtures.canBoot, "qemu-system-x86_64 and apt-get"),
        .serialized)
    struct GuestRunTests {
        func options(idle: Duration = .seconds(120)) -> GuestRunOptions {
            var options = GuestRunOptions()
            options.accelerator = .tcg
            options.idleTimeout = idle
            options.timeout = .seconds(300)
            return options
        }

        @Test("the guest reads a job from the input disk, writes the target disk and reports a result")
        func roundTrip() async throws {
            let guest = try await Fixtures.guest()
            let work = try Fixtures.temporaryDirectory("run")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let target = "\(work)/target.raw"
            #expect(FileManager.default.createFile(atPath: target, contents: nil))
            #expect(truncate(target, 64 << 20) == 0)

            let payload = (0..<3000).map { "line \($0) of the payload\n" }.joined()
            let script = """
                set -e
                kiln-event step "writing the target"
                dd if=/job/data/payload.txt of="$KILN_TARGET" bs=4096 conv=notrunc 2>/dev/null
                kiln-event result "payload-sha256=$(sha256sum /job/data/payload.txt | cut -d' ' -f1)"
                kiln-event result "target=$KILN_TARGET input=$KILN_INPUT"
                kiln-event result "clock=$(date +%s)"
                kiln-event result "blob=$(kiln-extent blob.bin | sha256sum | cut -d' ' -f1)"
                kiln-event result "small=$(kiln-extent small.txt)"
                """
            // A host file placed after the cpio stream, of a size that is no multiple of anything.
            let blob = "\(work)/blob.bin"
            let blobBytes = (0..<(3 << 20) + 12345).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
            try Data(blobBytes).write(to: URL(fileURLWithPath: blob))
            let (_, blobDigest) = try await Subprocess.output(["sha256sum", blob])
            let job = GuestJob(
                script: script,
                files: [
                    .init(path: "data/payload.txt", source: .bytes(Array(payload.utf8))),
                    .init(path: "blob.bin", source: .hostFile(blob), extent: true),
                    .init(path: "small.txt", source: .bytes(Array("tiny".utf8)), extent: true),
                ])
            var options = options()
            options.consoleLog = "\(work)/console.log"
            options.clockStart = 1_700_000_000
            let result = try await GuestRunner(guest: guest, options: options).run(
                job, targetDisk: target, workDirectory: work)

            let written = try Data(contentsOf: URL(fileURLWithPath: target)).prefix(payload.utf8.count)
            #expect(String(decoding: written, as: UTF8.self) == payload)
            #expect(result.results.contains { $0.hasPrefix("target=/dev/vd") })
            let clock = result.results.first { $0.hasPrefix("clock=") }.flatMap { Int($0.dropFirst(6)) } ?? 0
            #expect((1_700_000_000..<1_700_000_600).contains(clock), "guest clock \(clock)")
            let log = try String(contentsOfFile: "\(work)/console.log", encoding: .utf8)
            #expect(log.contains("KILN:1:init:"))
            #expect(result.results.contains("blob=\(blobDigest.prefix(64))"))
            #expect(result.results.contains("small=tiny"))
            print(
                "first message after \(result.firstMessageAfter), kernel uptime at /init \(result.kernelUptimeAtInit ?? -1) s, total \(result.elapsed)"
            )
            print(result.events.map { "\($0.sequence):\($0.name):\($0.payload)" }.joined(separator: "\n"))
        }

        @Test("a guest that stops printing is stopped, with an error that shows its last lines")
        func hangIsStopped() async throws {
            let guest = try await Fixtures.guest()
            let work = try Fixtures.temporaryDirectory("hang")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let job = GuestJob(script: "kiln-event step 'about to hang'\necho last words before the hang\nsleep 600\n")
            let started = ContinuousClock.now
            do {
                _ = try await GuestRunner(guest: guest, options: options(idle: .seconds(4))).run(
                    job, targetDisk: nil, workDirectory: work)
                Issue.record("a hanging job returned")
            } catch {
                #expect(error.code == .timeout)
                #expect(error.message.contains("printed nothing for 4 s"))
                #expect(error.consoleTail.contains { $0.contains("last words before the hang") })
            }
            #expect(ContinuousClock.now - started < .seconds(120))
            #expect(RunningQEMU.count == 0)
        }

        @Test("a silent step outlives the idle limit on heartbeats; a stuck job is stopped by the stall limit")
        func heartbeatsAndStalls() async throws {
            let guest = try await Fixtures.guest()
            let work = try Fixtures.temporaryDirectory("stall")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let job = GuestJob(script: "sleep 25\nkiln-event step 'still here'\nsleep 600\n")
            var options = options(idle: .seconds(20))
            options.stallTimeout = .seconds(30)
            do {
                _ = try await GuestRunner(guest: guest, options: options).run(job, targetDisk: nil, workDirectory: work)
                Issue.record("a stuck job returned")
            } catch {
                #expect(error.code == .timeout)
                #expect(error.message.contains("job printed nothing for 30 s"), "\(error.message)")
                #expect(error.consoleTail.contains { $0.contains("still here") })
                #expect(!error.consoleTail.contains { $0.contains(GuestScripts.heartbeatLine) })
            }
            #expect(RunningQEMU.count == 0)
        }

        @Test("cancelling a run stops QEMU and leaves no process behind")
        func cancellationStopsQEMU() async throws {
            let guest = try await Fixtures.guest()
            let work = try Fixtures.temporaryDirectory("cancel")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let job = GuestJob(script: "kiln-event step sleeping\nsleep 600\n")
            let seen = PIDList()
            let sink = ProgressSink { event in
                if event.message == "sleeping" { seen.record(RunningQEMU.processIDs) }
            }
            let run = Task {
                try await GuestRunner(guest: guest, options: options()).run(
                    job, targetDisk: nil, workDirectory: work, progress: sink)
            }
            while seen.pids.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            run.cancel()
            let outcome = await run.result
            guard case .failure(let error as BuildVMError) = outcome else {
                Issue.record("expected an interruption, got \(outcome)")
                return
            }
            #expect(error.code == .interrupted)
            #expect(RunningQEMU.count == 0)
            for pid in seen.pids {
                // The child was reaped: neither it nor its process group exists any more.
                #expect(kill(pid, 0) == -1 && errno == ESRCH)
                #expect(kill(-pid, 0) == -1 && errno == ESRCH)
            }
        }
    }
}

final class PIDList: Sendable {
    private let list = Mutex<[Int32]>([])
    func record(_ pids: [Int32]) { list.withLock { $0 += pids } }
    var pids: [Int32] { list.withLock { $0 } }
}

extension BootTests {
    @Suite("KVM probe", .requires(Fixtures.canBoot && QEMUCommand.kvmDeviceUsable(), "/dev/kvm"), .serialized)
    struct KVMProbeTests {
        /// On this project's machines /dev/kvm opens but guests hang; where KVM works, these tests check
        /// the fast path instead.
        @Test("auto falls back to TCG with one warning when a KVM guest does not reach /init; kvm fails clearly")
        func probe() async throws {
            let guest = try await Fixtures.guest()
            let work = try Fixtures.temporaryDirectory("kvm")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let job = GuestJob(script: "kiln-event result ok\n")
            let warnings = PIDList()
            let sink = ProgressSink { event in if event.kind == .warning { warnings.record([0]) } }
            var options = GuestRunOptions()
            options.kvmProbeTimeout = .seconds(8)
            options.idleTimeout = .seconds(120)

            options.accelerator = .kvm
            var kvmWorks = false
            do {
                let result = try await GuestRunner(guest: guest, options: options).run(
                    job, targetDisk: nil, workDirectory: work)
                kvmWorks = true
                #expect(result.accelerator == .kvm && result.results == ["ok"])
            } catch {
                #expect(error.code == .kvm)
                // Here a KVM guest either hangs or QEMU aborts; both must read as a KVM failure.
                #expect(
                    error.message == "a KVM guest did not reach /init within 8 s"
                        || error.message.hasPrefix("a KVM guest ended"))
            }
            #expect(RunningQEMU.count == 0)

            KVMStatus.knownBroken.withLock { $0 = false }
            options.accelerator = .auto
            let result = try await GuestRunner(guest: guest, options: options).run(
                job, targetDisk: nil, workDirectory: work, progress: sink)
            #expect(result.results == ["ok"])
            #expect(result.accelerator == (kvmWorks ? .kvm : .tcg))
            #expect(warnings.pids.count == (kvmWorks ? 0 : 1))
        }
    }
}
