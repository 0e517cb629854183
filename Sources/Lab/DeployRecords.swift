import Foundation
import KilnSupport
import NetBoot
import Synchronization

/// Where each image deploy stands, kept in `<state>/deploys.json` (replaced atomically at every change
/// of state, not at every progress report), so that a restarted `kiln serve` knows the tokens it handed
/// out and the deploys that failed.
///
/// A deploy goes `booting` (kiln handed the host the agent and a token) -> `installing` (the agent
/// fetched its plan) -> `installed` or `failed`. A failed host is not offered the agent again until its
/// record is removed (`kiln serve --config LAB --reinstall NAME`).
package final class DeployRecords: Sendable {
    package enum State: String, Sendable, Codable, CaseIterable {
        case waiting, booting, installing, installed, failed
    }

    package struct Record: Sendable, Codable, Equatable {
        package var mac: String
        package var name: String
        package var token: String
        package var state: State
        /// The address the agent's first request came from; later requests must come from it too.
        package var address: String?
        package var image: String
        /// Bytes written of `total` (the image's data, not its virtual size).
        package var bytes: Int64
        package var total: Int64
        /// Bytes per second over the last report.
        package var rate: Double
        /// Seconds since 1970.
        package var started: Double
        package var ended: Double?
        package var error: String?
        var lastReport: Double?
    }

    package let file: String
    private let records: Mutex<(stamp: FileStamp?, byMAC: [String: Record])>

    /// Reads `<directory>/deploys.json` (missing: no deploys yet).
    package init(directory: String) {
        file = directory + "/deploys.json"
        records = Mutex((nil, [:]))
        reloadIfChanged()
    }

    package func record(_ mac: MACAddress) -> Record? {
        reloadIfChanged()
        return records.withLock { $0.byMAC[mac.description] }
    }

    package func record(token: String) -> Record? {
        reloadIfChanged()
        return records.withLock { $0.byMAC.values.first { $0.token == token } }
    }

    package var all: [Record] {
        reloadIfChanged()
        return records.withLock { $0.byMAC.values.sorted { $0.name < $1.name } }
    }

    /// The host's deploy under way, or a new one with a fresh token.
    /// - Returns: the record, and whether it was started now.
    package func begin(_ mac: MACAddress, name: String, image: String, now: Double = Date().timeIntervalSince1970)
        throws -> (Record, started: Bool)
    {
        reloadIfChanged()
        return try records.withLock { state in
            if let existing = state.byMAC[mac.description], existing.state == .booting || existing.state == .installing
            {
                return (existing, false)
            }
            let record = Record(
                mac: mac.description, name: name, token: Self.newToken(), state: .booting, address: nil, image: image,
                bytes: 0, total: 0, rate: 0, started: now, ended: nil, error: nil, lastReport: nil)
            state.byMAC[mac.description] = record
            try write(&state)
            return (record, true)
        }
    }

    /// Changes one record; `persist` writes the file (state changes), otherwise only memory changes
    /// (progress).
    @discardableResult
    package func update(token: String, persist: Bool, _ change: (inout Record) -> Void) throws -> Record? {
        reloadIfChanged()
        return try records.withLock { state in
            guard let key = state.byMAC.first(where: { $0.value.token == token })?.key,
                var record = state.byMAC[key]
            else { return nil }
            change(&record)
            state.byMAC[key] = record
            if persist { try write(&state) }
            return record
        }
    }

    /// Forgets a host's deploy, so that its next network boot deploys again.
    /// - Returns: whether there was one.
    @discardableResult
    package func remove(_ mac: MACAddress) throws -> Bool {
        reloadIfChanged()
        return try records.withLock { state in
            guard state.byMAC.removeValue(forKey: mac.description) != nil else { return false }
            try write(&state)
            return true
        }
    }

    /// 128 random bits as hex: what the agent's URLs carry.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max, using: &generator)) }
            .joined()
    }

    private func write(_ state: inout (stamp: FileStamp?, byMAC: [String: Record])) throws {
        let encoder = KilnJSON.encoder()
        do {
            let data = try encoder.encode(state.byMAC.values.sorted { $0.mac < $1.mac })
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicOutput.write(String(decoding: data, as: UTF8.self) + "\n", to: file)
        } catch {
            throw NetBootError(.io, "cannot write \(file): \(error)")
        }
        state.stamp = FileStamp(file)
    }

    /// Takes the file again when someone else changed it (`--reinstall`, an edit by hand). A file that
    /// does not parse is left alone and the records in memory stay.
    private func reloadIfChanged() {
        let stamp = FileStamp(file)
        guard records.withLock({ $0.stamp != stamp }) else { return }
        var byMAC: [String: Record] = [:]
        if stamp != nil {
            guard let data = FileManager.default.contents(atPath: file),
                let list = try? JSONDecoder().decode([Record].self, from: data)
            else { return }
            for record in list { byMAC[record.mac] = record }
        }
        records.withLock { state in
            // Progress that only memory holds survives a reload of the same deploy.
            for (mac, record) in byMAC {
                if let current = state.byMAC[mac], current.token == record.token, current.state == record.state {
                    byMAC[mac] = current
                }
            }
            state = (stamp, byMAC)
        }
    }
}
