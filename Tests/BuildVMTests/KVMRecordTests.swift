import Foundation
import KilnTestSupport
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

extension BootTests {
    /// `kiln test` (like `kiln build`) defaults to `--accel auto`, remembers per host, kernel and QEMU
    /// whether KVM worked, and says so in one sentence; QEMU's own words only with --verbose.
    @Suite(
        "kiln remembers KVM",
        .requires(
            KilnProgram.path != nil && Fixtures.tool("qemu-system-x86_64") && QEMUCommand.kvmDeviceUsable(),
            "the kiln binary, qemu-system-x86_64 and /dev/kvm"))
    struct KVMRecordTests {
        private func kiln(_ arguments: [String], cache: String) throws -> (code: Int32, errors: String) {
            let process = KilnProgram.process(arguments)
            var environment = ProcessInfo.processInfo.environment
            environment["KILN_CACHE"] = cache
            process.environment = environment
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let data = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }

        @Test("the first run probes and records; the next ones use the record; --probe-kvm probes again")
        func probeIsRemembered() throws {
            let work = try Fixtures.temporaryDirectory("kvm")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try serialBootDisk(at: "\(work)/disk.img", printing: "\r\nkvm-probe login: ")
            let cache = "\(work)/cache"
            let image = "\(work)/disk.img"

            let (first, firstErr) = try kiln(["test", image, "--timeout", "120"], cache: cache)
            #expect(first == 0, "\(firstErr)")
            let records = (try? FileManager.default.contentsOfDirectory(atPath: "\(cache)/kvm")) ?? []
            #expect(records.count == 1, "no record of the probe: \(records)")
            let record = try String(contentsOfFile: "\(cache)/kvm/\(records.first ?? "")", encoding: .utf8)
            let works = record.hasPrefix("works")
            #expect(works || record.hasPrefix("broken"), "\(record)")
            // The record names the kernel and QEMU version it holds for.
            var names = utsname()
            uname(&names)
            let kernel = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            #expect(records.first?.contains(kernel.replacingOccurrences(of: "+", with: "_")) == true, "\(records)")
            // Never QEMU's assertion text without --verbose.
            #expect(!firstErr.contains("Assertion"), "\(firstErr)")
            #expect(!firstErr.contains("kvm_buf_set_msrs"), "\(firstErr)")
            if works {
                #expect(firstErr.contains(", kvm)"), "\(firstErr)")
            } else {
                #expect(firstErr.contains(KVMProbe.brokenNowSentence), "\(firstErr)")
                #expect(firstErr.contains(", tcg)"), "\(firstErr)")
            }

            let (second, secondErr) = try kiln(["--verbose", "test", image, "--timeout", "120"], cache: cache)
            #expect(second == 0, "\(secondErr)")
            if !works {
                #expect(secondErr.contains(KVMProbe.brokenBeforeSentence), "\(secondErr)")
                #expect(!secondErr.contains(KVMProbe.brokenNowSentence), "it probed again: \(secondErr)")
                // --verbose shows what QEMU said when the record was made.
                #expect(secondErr.contains("kiln: KVM on host "), "\(secondErr)")
            }

            let (third, thirdErr) = try kiln(["test", image, "--timeout", "120", "--probe-kvm"], cache: cache)
            #expect(third == 0, "\(thirdErr)")
            if !works { #expect(thirdErr.contains(KVMProbe.brokenNowSentence), "it did not probe again: \(thirdErr)") }
        }
    }
}
