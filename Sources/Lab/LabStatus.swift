import Foundation
import KilnSupport
import Synchronization

/// Counters for `/metrics` (the Prometheus text format).
package final class LabMetrics: Sendable {
    package let deploysStarted = Atomic<Int>(0)
    package let deploysFinished = Atomic<Int>(0)
    package let deploysFailed = Atomic<Int>(0)
    /// Bytes of image chunks sent to deploy agents.
    package let imageBytesServed = Atomic<Int>(0)
    /// Requests that reached the lab's files (each TFTP transfer asks once; so does each HTTP request).
    package let tftpRequests = Atomic<Int>(0)
    package let httpRequests = Atomic<Int>(0)

    package init() {}
}

/// One row of the status page: a host and where its install stands.
struct HostStatus: Codable, Equatable {
    var name: String
    var mac: String
    var address: String?
    /// What it installs: the image's or the description's path.
    var installs: String
    var method: String
    var state: String
    var bytes: Int64?
    var total: Int64?
    var rate: Double?
    var started: String?
    var ended: String?
    var error: String?
}

/// The HTTP content types of the names the status files answer to that have no telling extension.
enum LabStatus {
    static let contentTypes = [
        "status": "text/html; charset=utf-8", "metrics": "text/plain; version=0.0.4; charset=utf-8",
    ]
}

/// `GET /status` (a page that refreshes itself), `/status.json` and `/metrics`.
extension LabBootFiles {
    func statusFile(_ name: String) -> [UInt8]? {
        switch name {
        case "status", "status.html": return bytes(statusPage())
        case "status.json": return Array(statusJSON().utf8)
        case "metrics": return bytes(metricsText())
        default: return nil
        }
    }

    /// Every host of the lab file, in its order.
    func hostStatuses() -> [HostStatus] {
        let (config, state, deploys) = current.withLock { ($0.config, $0.state, $0.deploys) }
        let leased = leases
        let installed = Dictionary(state.installed.map { ($0.mac, $0) }, uniquingKeysWith: { a, _ in a })
        let booted = bootedInstallers.withLock { $0 }
        return config.hosts.map { host in
            var row = HostStatus(
                name: host.name, mac: host.mac.description,
                address: (leased[host.mac] ?? host.address)?.description,
                installs: host.image ?? host.description ?? "", method: host.install.rawValue, state: "waiting")
            if host.install == .image, let record = deploys.record(host.mac) {
                row.state = record.state.rawValue
                row.bytes = record.bytes
                row.total = record.total
                row.rate = record.rate
                row.started = Self.time(record.started)
                row.ended = record.ended.map(Self.time)
                row.error = record.error
                if row.address == nil { row.address = record.address }
            } else if let done = installed[host.mac] {
                row.state = "installed"
                row.ended = Self.time(Double(done.installed))
            } else if let start = booted[host.mac] {
                row.state = "booting"
                row.started = Self.time(start)
            }
            // A host recorded as installed by hand (or before this deploy record) is installed.
            if row.state != "failed", installed[host.mac] != nil { row.state = "installed" }
            return row
        }
    }

    func statusJSON() -> String {
        let encoder = KilnJSON.encoder()
        struct Document: Encodable {
            var lab: String
            var generated: String
            var hosts: [HostStatus]
        }
        let document = Document(
            lab: current.withLock { $0.config.path }, generated: Self.time(Date().timeIntervalSince1970),
            hosts: hostStatuses())
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    func statusPage() -> String {
        let rows = hostStatuses().map { host -> String in
            var progress = ""
            if let bytes = host.bytes, let total = host.total, total > 0 {
                let percent = Int(Double(bytes) * 100 / Double(total))
                progress = "\(percent)% (\(Self.mebibytes(bytes)) of \(Self.mebibytes(total)) MiB)"
            }
            let rate = host.rate.map { $0 > 0 ? "\(Self.mebibytes(Int64($0))) MiB/s" : "" } ?? ""
            let cells = [
                host.name, host.mac, host.address ?? "", host.installs, host.state, progress, rate, host.started ?? "",
                host.ended ?? "", host.error ?? "",
            ]
            let tds = cells.map { "<td>\(Self.escape($0))</td>" }.joined()
            return "<tr class=\"\(host.state)\" data-host=\"\(Self.escape(host.name))\">\(tds)</tr>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="refresh" content="2">
            <title>kiln lab status</title>
            <style>
            body { font-family: sans-serif; margin: 1.5em; }
            table { border-collapse: collapse; }
            th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; }
            tr.installed td:nth-child(5) { color: #070; font-weight: bold; }
            tr.failed td:nth-child(5) { color: #b00; font-weight: bold; }
            tr.installing td:nth-child(5), tr.booting td:nth-child(5) { color: #a60; }
            </style>
            </head>
            <body>
            <h1>kiln lab status</h1>
            <p>\(Self.escape(current.withLock { $0.config.path })), \(Self.time(Date().timeIntervalSince1970)); \
            this page refreshes every 2 s (<a href="status.json">JSON</a>, <a href="metrics">metrics</a>).</p>
            <table id="hosts">
            <thead><tr><th>host</th><th>MAC</th><th>address</th><th>installs</th><th>state</th>\
            <th>progress</th><th>rate</th><th>started</th><th>ended</th><th>last error</th></tr></thead>
            <tbody>
            \(rows.joined(separator: "\n"))
            </tbody>
            </table>
            </body>
            </html>

            """
    }

    func metricsText() -> String {
        let counters: [(String, String, Int)] = [
            ("kiln_deploys_started_total", "Image deploys started.", metrics.deploysStarted.load(ordering: .relaxed)),
            (
                "kiln_deploys_finished_total", "Image deploys that ended installed.",
                metrics.deploysFinished.load(ordering: .relaxed)
            ),
            ("kiln_deploys_failed_total", "Image deploys that failed.", metrics.deploysFailed.load(ordering: .relaxed)),
            (
                "kiln_image_bytes_served_total", "Bytes of disk images sent to deploy agents.",
                metrics.imageBytesServed.load(ordering: .relaxed)
            ),
            (
                "kiln_tftp_requests_total", "TFTP read requests for the lab's files.",
                metrics.tftpRequests.load(ordering: .relaxed)
            ),
            (
                "kiln_http_requests_total", "HTTP requests for the lab's files.",
                metrics.httpRequests.load(ordering: .relaxed)
            ),
        ]
        var text = ""
        for (name, help, value) in counters {
            text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
        }
        text += "# HELP kiln_dhcp_leases DHCP leases kiln holds now.\n# TYPE kiln_dhcp_leases gauge\n"
        text += "kiln_dhcp_leases \(leases.count)\n"
        text += "# HELP kiln_hosts Lab hosts by install state.\n# TYPE kiln_hosts gauge\n"
        let states = Dictionary(grouping: hostStatuses(), by: \.state)
        for state in DeployRecords.State.allCases {
            text += "kiln_hosts{state=\"\(state.rawValue)\"} \(states[state.rawValue]?.count ?? 0)\n"
        }
        return text
    }

    static func time(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func mebibytes(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
