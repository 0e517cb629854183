import Foundation
import KilnSupport
import Synchronization

/// What kiln learned about KVM on this host, kept across runs in `$KILN_CACHE/kvm/`: one record per
/// host name, kernel release and QEMU version, since any of them changing may change the answer. A
/// host where KVM guests hang or QEMU aborts is then not tried again on every build, and the record
/// goes with `kiln build --probe-kvm` (or by deleting the folder).
package enum KVMProbe {
    /// One line per fact: `works` or `broken`, then the detail (what QEMU said).
    package struct Record: Sendable, Equatable {
        package var works: Bool
        package var detail: String
        /// "host debian, kernel 6.1.0-18-amd64, QEMU 7.2.22".
        package var subject: String
    }

    /// What a user reads when KVM has just failed: one sentence; `--verbose` shows QEMU's own words.
    package static let brokenNowSentence =
        "KVM does not work on this host (its guest did not start); using TCG, which is slower. "
        + "kiln remembers this until the kernel or QEMU changes, or --probe-kvm"

    /// What a user reads when the record says KVM failed before.
    package static let brokenBeforeSentence =
        "KVM did not work on this host before; using TCG, which is slower (--probe-kvm tries KVM again)"

    /// The folder the records live in.
    package static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        KilnCache.root(environment: environment) + "/kvm"
    }

    /// What identifies the answer: host name, kernel release, QEMU's version line.
    package static func subject(qemu: String = "qemu-system-x86_64") -> String {
        var names = utsname()
        uname(&names)
        let host = withUnsafeBytes(of: names.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let kernel = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "host \(host), kernel \(kernel), QEMU \(qemuVersion(qemu))"
    }

    /// The recorded answer for this host, kernel and QEMU, if any.
    package static func recorded(qemu: String = "qemu-system-x86_64", directory: String = directory()) -> Record? {
        let subject = subject(qemu: qemu)
        guard let text = try? String(contentsOfFile: path(subject, directory), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let first = lines.first, first == "works" || first == "broken" else { return nil }
        return Record(works: first == "works", detail: lines.count > 1 ? lines[1] : "", subject: subject)
    }

    /// Keeps the answer for the next runs (best effort: a cache that cannot be written only costs a probe).
    package static func record(
        works: Bool, detail: String, qemu: String = "qemu-system-x86_64", directory: String = directory()
    ) {
        let subject = subject(qemu: qemu)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? AtomicOutput.write("\(works ? "works" : "broken")\n\(detail)", to: path(subject, directory))
    }

    /// Forgets every answer, so that the next run probes again.
    package static func forget(directory: String = directory()) {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func path(_ subject: String, _ directory: String) -> String {
        let name = subject.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        return "\(directory)/\(String(name))"
    }

    private static let versions = Mutex<[String: String]>([:])

    /// "7.2.22" from `qemu-system-x86_64 --version`, asked once per process.
    static func qemuVersion(_ qemu: String) -> String {
        if let known = versions.withLock({ $0[qemu] }) { return known }
        let process = Subprocess([qemu, "--version"], output: .pipe)
        var version = "unknown"
        if (try? process.start()) != nil, let out = process.outputHandle {
            let text = String(decoding: out.readDataToEndOfFile(), as: UTF8.self)
            _ = process.waitBlocking()
            // "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
            if let line = text.split(separator: "\n").first, let range = line.range(of: "version ") {
                version = String(line[range.upperBound...].prefix { !$0.isWhitespace })
            }
        }
        versions.withLock { $0[qemu] = version }
        return version
    }
}
