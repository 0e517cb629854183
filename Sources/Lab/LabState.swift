import Foundation
import KilnSupport
import NetBoot
import Synchronization

/// Which lab hosts finished installing, so that their next network boot goes to the local disk instead
/// of installing again.
///
/// Kept in `<state>/installed`, one `MAC NAME SECONDS-SINCE-1970` line per host, replaced atomically
/// after every change. Deleting a host's line (or the file) makes it install again at its next boot;
/// kiln reads the file again when it changes.
package final class LabState: Sendable {
    package struct Record: Sendable, Equatable {
        package var mac: MACAddress
        package var name: String
        package var installed: Int64
    }

    package let directory: String
    private let records: Mutex<(stamp: FileStamp?, byMAC: [MACAddress: Record])>

    package var file: String { directory + "/installed" }

    /// Reads the state folder (a missing one is empty; it is made at the first write).
    /// - Throws: `NetBootError(.configuration)` naming a line that does not parse.
    package init(directory: String) throws {
        self.directory = directory
        records = Mutex((nil, [:]))
        try reloadIfChanged()
    }

    /// Whether `mac` finished installing.
    package func isInstalled(_ mac: MACAddress) -> Bool {
        try? reloadIfChanged()
        return records.withLock { $0.byMAC[mac] != nil }
    }

    /// Every installed host, by address.
    package var installed: [Record] {
        try? reloadIfChanged()
        return records.withLock { $0.byMAC.values.sorted { $0.mac.description < $1.mac.description } }
    }

    /// Records that `mac` finished installing and writes the file.
    /// - Throws: `NetBootError(.io)` naming the file.
    package func markInstalled(_ mac: MACAddress, name: String, now: Int64 = Int64(Date().timeIntervalSince1970))
        throws
    {
        try reloadIfChanged()
        try records.withLock { state in
            state.byMAC[mac] = Record(mac: mac, name: name, installed: now)
            try write(state.byMAC)
            state.stamp = FileStamp(file)
        }
    }

    /// Forgets that `mac` finished installing (its next network boot installs it again).
    /// - Returns: whether it was recorded.
    package func forget(_ mac: MACAddress) throws -> Bool {
        try reloadIfChanged()
        return try records.withLock { state in
            guard state.byMAC.removeValue(forKey: mac) != nil else { return false }
            try write(state.byMAC)
            state.stamp = FileStamp(file)
            return true
        }
    }

    private func write(_ byMAC: [MACAddress: Record]) throws {
        var text = "# kiln: hosts that finished installing (MAC NAME SECONDS-SINCE-1970); delete a line to reinstall\n"
        for record in byMAC.values.sorted(by: { $0.mac.description < $1.mac.description }) {
            text += "\(record.mac) \(record.name) \(record.installed)\n"
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try AtomicOutput.write(text, to: file)
        } catch {
            throw NetBootError(.io, "cannot write \(file): \(error)")
        }
    }

    private func reloadIfChanged() throws {
        let stamp = FileStamp(file)
        guard records.withLock({ $0.stamp != stamp }) else { return }
        var byMAC: [MACAddress: Record] = [:]
        if stamp != nil, let text = try? String(contentsOfFile: file, encoding: .utf8) {
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let fields = trimmed.split(separator: " ")
                guard fields.count == 3, let mac = MACAddress(String(fields[0])), let time = Int64(fields[2]) else {
                    throw NetBootError(.configuration, "\(file):\(index + 1): not a 'MAC NAME SECONDS' line")
                }
                byMAC[mac] = Record(mac: mac, name: String(fields[1]), installed: time)
            }
        }
        records.withLock { $0 = (stamp, byMAC) }
    }
}

/// A file's modification time and size, to notice that it changed without reading it.
struct FileStamp: Sendable, Equatable {
    var seconds: Int
    var nanoseconds: Int
    var size: Int
    var inode: UInt64

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
        size = Int(info.st_size)
        inode = UInt64(info.st_ino)
    }
}
