import Foundation

/// What /proc says about processes: for tests that kill kiln and look for what it left running.
package enum ProcessTable {
    /// The children of `pid`.
    package static func children(of pid: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            // After "pid (comm)": the state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == pid
        }
    }

    /// The child of `pid` whose command line contains `text`, if one runs.
    package static func child(of pid: pid_t, running text: String) -> pid_t? {
        children(of: pid).first { child in
            ((try? String(contentsOfFile: "/proc/\(child)/cmdline", encoding: .utf8)) ?? "").contains(text)
        }
    }

    /// Whether `pid` runs (a zombie has ended; only its parent's wait is missing).
    package static func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !stat.contains(") Z ")
    }

    /// Waits up to `seconds` for `pid` to end, sleeping the calling thread; whether it ended.
    package static func waitForEnd(of pid: pid_t, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while alive(pid) && Date() < deadline { usleep(50_000) }
        return !alive(pid)
    }
}

extension ProcessTable {
    /// The pid of a process that has ended: a child that ran `true` and was reaped (what a killed
    /// kiln's leftovers are named after).
    package static func endedPID() throws -> pid_t {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        return child.processIdentifier
    }
}

/// Test inputs.
package enum TestData {
    /// Writes `mebibytes` MiB of random bytes to `path`: a raw image that no compressor shrinks, slow
    /// enough to convert that a signal or a kill arrives mid-way.
    package static func writeRandom(mebibytes: Int, to path: String) throws {
        var generator = SystemRandomNumberGenerator()
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        for _ in 0..<mebibytes {
            var chunk = [UInt64](repeating: 0, count: (1 << 20) / 8)
            for i in chunk.indices { chunk[i] = generator.next() }
            try handle.write(contentsOf: chunk.withUnsafeBytes { Data($0) })
        }
    }
}
