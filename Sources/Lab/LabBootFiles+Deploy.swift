import Foundation
import Logging
import NIOCore
import NetBoot

/// Image deploys: the agent's boot entry with its one-time token, and the endpoints the agent calls.
extension LabBootFiles {
    /// Where the deploy agent's kernel and initramfs are served (`agent/vmlinuz`, `agent/initrd.img`).
    static let agentFolder = "agent"

    /// The agent's boot for a host that deploys an image, or the local disk when it cannot (no agent,
    /// HTTP off, a deploy that failed and waits for `--reinstall`).
    func deployAction(for host: LabConfig.Host) -> BootAction {
        let (config, deploys) = current.withLock { ($0.config, $0.deploys) }
        if let record = deploys.record(host.mac), record.state == .failed {
            logger.info(
                "lab: \(host.name) boots its local disk: its deploy failed (\(record.error ?? "no reason given")); kiln serve --reinstall \(host.name) tries again",
                metadata: ["mac": "\(host.mac)"])
            return .localDisk
        }
        guard let base = config.httpBase else {
            logger.error("lab: \(host.name) cannot be deployed: HTTP is off, and the agent fetches its image over it")
            return .localDisk
        }
        guard services.agent != nil else {
            logger.error("lab: \(host.name) cannot be deployed: kiln has no deploy agent (run kiln serve --prepare)")
            return .localDisk
        }
        let record: DeployRecords.Record
        do {
            let started: Bool
            (record, started) = try deploys.begin(
                host.mac, name: host.name, image: host.image ?? host.description ?? "")
            if started {
                metrics.deploysStarted.add(1, ordering: .relaxed)
                logger.notice("lab: \(host.name) deploy booting", metadata: ["mac": "\(host.mac)", "state": "booting"])
            }
        } catch {
            logger.error("lab: \(host.name): \(error)")
            return .localDisk
        }
        // Start reading (or building) the image now, while the agent boots.
        if let image = host.image {
            let images = current.withLock { $0.images }
            Task { _ = try? await images.plan(for: image) }
        } else {
            Task { _ = try? await self.builtImage(for: host) }
        }
        var words = [
            "kiln.url=\(base)/deploy/\(record.token)", "kiln.mac=\(host.mac)", "console=tty0", "console=ttyS0,115200",
        ]
        if let disk = host.disk { words.append("kiln.disk=\(disk)") }
        if let extra = host.kernelArgs { words.append(extra) }
        return .install(
            name: host.name,
            InstallerBoot(
                kernel: "\(Self.agentFolder)/vmlinuz", initrd: "\(Self.agentFolder)/initrd.img",
                arguments: words.joined(separator: " ")))
    }

    /// The image a host with `install: image` gets, built once from its description.
    package func builtImage(for host: LabConfig.Host) async throws -> String {
        if let image = host.image { return image }
        guard let build = services.buildImage else {
            throw NetBootError(.configuration, "\(host.name): kiln cannot build images here")
        }
        // One build per description, whichever hosts install it.
        let key = host.description ?? host.name
        let task = builds.withLock { builds in
            if let task = builds[key] { return task }
            logger.notice("lab: building the image of \(host.name) from \(key)")
            let task = Task { try await build(host) }
            builds[key] = task
            return task
        }
        do {
            return try await task.value
        } catch {
            // The next boot tries again.
            _ = builds.withLock { $0.removeValue(forKey: key) }
            throw NetBootError(.refused, "building the image of \(host.name) failed: \(error)")
        }
    }

    /// The deploy that `deploy/TOKEN/...` names, when the token is known, the deploy still runs and the
    /// request comes from its host's address (its DHCP lease, else the first address that used it).
    /// - Throws: `NetBootError(.refused)`, which the HTTP server answers with 403.
    func authorizedDeploy(_ token: String, client: BootClient) throws -> (
        record: DeployRecords.Record, host: LabConfig.Host, peer: String
    ) {
        let (config, deploys) = current.withLock { ($0.config, $0.deploys) }
        let peer = Self.ipv4Text(client.address)
        guard let record = deploys.record(token: token), let mac = MACAddress(record.mac),
            let host = config.host(mac)
        else {
            throw NetBootError(.refused, "no deploy has the token in deploy/\(token.prefix(4))...")
        }
        if let leased = leases[mac], leased.description != peer {
            throw NetBootError(.refused, "deploy of \(host.name) asked from \(peer), not its leased address \(leased)")
        }
        if let bound = record.address, bound != peer {
            throw NetBootError(.refused, "deploy of \(host.name) asked from \(peer), not from \(bound)")
        }
        if record.state == .installed || record.state == .failed {
            throw NetBootError(.refused, "the deploy of \(host.name) has ended (\(record.state.rawValue))")
        }
        return (record, host, peer)
    }

    /// `deploy/TOKEN/chunk/N`: a piece of the image, streamed from its raw view.
    package func diskRange(at path: String, for client: BootClient) async throws -> DiskRange? {
        let parts = path.split(separator: "/").map(String.init)
        guard client.transport == .http, parts.count == 4, parts[0] == "deploy", parts[2] == "chunk",
            let index = Int(parts[3])
        else { return nil }
        let (_, host, _) = try authorizedDeploy(parts[1], client: client)
        let images = current.withLock { $0.images }
        let range = try await images.chunk(index, of: try await builtImage(for: host))
        metrics.imageBytesServed.add(range.range.count, ordering: .relaxed)
        return range
    }

    /// `deploy/TOKEN/...`: the agent's plan and reports.
    func deployFile(_ parts: [String], client: BootClient) async throws -> [UInt8]? {
        guard client.transport == .http, parts.count >= 3, parts[2] != "chunk" else { return nil }
        let (deploys, images, state) = current.withLock { ($0.deploys, $0.images, $0.state) }
        let token = parts[1]
        let (record, host, peer) = try authorizedDeploy(token, client: client)
        let mac = host.mac
        let now = Date().timeIntervalSince1970
        switch parts[2] {
        case "plan":
            let plan: DeployPlan
            do {
                let image = try await builtImage(for: host)
                plan = try await images.plan(for: image)
            } catch {
                let reason = (error as? NetBootError)?.message ?? "\(error)"
                try fail(token: token, host: host, reason: reason)
                return bytes("fail \(reason)\n")
            }
            try deploys.update(token: token, persist: true) { record in
                record.address = peer
                record.state = .installing
                record.total = plan.dataBytes
                record.lastReport = now
            }
            logger.notice(
                "lab: \(host.name) deploy installing",
                metadata: [
                    "mac": "\(mac)", "state": "installing", "client": "\(peer)", "bytes": "\(plan.dataBytes)",
                    "image-sha256": "\(plan.fileSHA256)",
                ])
            return bytes(plan.text(name: host.name, disk: host.disk, after: host.after.rawValue))
        case "progress":
            guard parts.count == 4, let written = Int64(parts[3]) else { return nil }
            try deploys.update(token: token, persist: false) { record in
                if let last = record.lastReport, now > last, written >= record.bytes {
                    record.rate = Double(written - record.bytes) / (now - last)
                }
                record.bytes = written
                record.lastReport = now
                if record.address == nil { record.address = peer }
            }
            logger.debug("lab: \(host.name) wrote \(written) bytes", metadata: ["mac": "\(mac)"])
            return bytes("ok\n")
        case "done":
            try deploys.update(token: token, persist: true) { record in
                record.state = .installed
                record.ended = now
                record.bytes = max(record.bytes, record.total)
            }
            try state.markInstalled(mac, name: host.name)
            metrics.deploysFinished.add(1, ordering: .relaxed)
            let seconds = Int(now - record.started)
            logger.notice(
                "lab: \(host.name) deploy installed in \(seconds) s; it boots from its disk from now on",
                metadata: ["mac": "\(mac)", "state": "installed"])
            return bytes("ok: \(host.name) is installed\n")
        case "failed":
            let reason = parts.dropFirst(3).joined(separator: "/")
            try fail(token: token, host: host, reason: reason.isEmpty ? "the agent gave no reason" : reason)
            return bytes("ok\n")
        default:
            return nil
        }
    }

    private func fail(token: String, host: LabConfig.Host, reason: String) throws {
        let deploys = current.withLock { $0.deploys }
        try deploys.update(token: token, persist: true) { record in
            record.state = .failed
            record.error = reason
            record.ended = Date().timeIntervalSince1970
        }
        metrics.deploysFailed.add(1, ordering: .relaxed)
        logger.error(
            "lab: \(host.name) deploy failed: \(reason)", metadata: ["mac": "\(host.mac)", "state": "failed"])
    }

    /// Forgets that a host finished or failed, so that its next network boot installs it again.
    /// - Returns: whether there was anything to forget.
    package func reinstall(_ name: String) throws -> Bool {
        let (config, state, deploys) = current.withLock { ($0.config, $0.state, $0.deploys) }
        guard let host = config.host(named: name) else {
            throw NetBootError(.configuration, "the lab has no host named \(name)")
        }
        let deployed = try deploys.remove(host.mac)
        let installed = try state.forget(host.mac)
        return deployed || installed
    }

    /// An address as the lab writes it: IPv4-mapped IPv6 addresses (from a `[::]` socket) as plain IPv4.
    static func ipv4Text(_ address: SocketAddress?) -> String {
        guard let text = address?.ipAddress else { return "?" }
        return text.hasPrefix("::ffff:") ? String(text.dropFirst("::ffff:".count)) : text
    }
}
