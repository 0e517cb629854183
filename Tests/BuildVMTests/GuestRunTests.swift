#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KilnSupport
import Testing

@testable import BuildVM

@Suite("builder guest under QEMU (TCG)", .enabled(if: Fixtures.canBoot, "needs qemu-system-x86_64 and apt-get"), .serialized)
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
            """
        let job = GuestJob(script: script, files: [.init(path: "data/payload.txt", source: .bytes(Array(payload.utf8)))])
        var options = options()
        options.consoleLog = "\(work)/console.log"
        let result = try await GuestRunner(guest: guest, options: options).run(job, targetDisk: target, workDirectory: work)

        let written = try Data(contentsOf: URL(fileURLWithPath: target)).prefix(payload.utf8.count)
        #expect(String(decoding: written, as: UTF8.self) == payload)
        #expect(result.results.contains { $0.hasPrefix("target=/dev/vd") })
        print("first message after \(result.firstMessageAfter), kernel uptime at /init \(result.kernelUptimeAtInit ?? -1) s, total \(result.elapsed)")
        print(result.events.map { "\($0.sequence):\($0.name):\($0.payload)" }.joined(separator: "\n"))
    }
}
