import Foundation
import KilnSupport

/// The address book of kiln's full DHCP server for an isolated lab network: fixed addresses for known
/// hosts, a pool for the rest, and leases kept in a text file that is replaced atomically after every
/// change (`AtomicOutput`), so that a restart loses none.
///
/// The file has one lease per line, `MAC ADDRESS EXPIRES` (expiry in seconds since 1970), after a comment
/// line; it is meant to be read by people too.
package struct DHCPLeases: Sendable, Equatable {
    package struct Lease: Sendable, Equatable {
        package var mac: MACAddress
        package var address: IPv4Address
        /// Seconds since 1970.
        package var expires: Int64
    }

    package let pool: ClosedRange<IPv4Address>
    /// Known hosts' addresses, never given to anyone else.
    package let fixed: [MACAddress: IPv4Address]
    package private(set) var leases: [MACAddress: Lease] = [:]
    /// Addresses a client found in use (DHCPDECLINE), kept out of the pool until the time given.
    package private(set) var declined: [IPv4Address: Int64] = [:]
    /// Addresses offered and not yet requested, by client (in memory only).
    package private(set) var offered: [MACAddress: Lease] = [:]

    package init(pool: ClosedRange<IPv4Address>, fixed: [MACAddress: IPv4Address] = [:]) {
        self.pool = pool
        self.fixed = fixed
    }

    /// A book with a new pool and fixed addresses that keeps `previous`'s leases (a lab file reload).
    package init(pool: ClosedRange<IPv4Address>, fixed: [MACAddress: IPv4Address], keeping previous: DHCPLeases) {
        self.pool = pool
        self.fixed = fixed
        leases = previous.leases
        declined = previous.declined
    }

    /// Keeps `address` from everyone until `now + seconds` (a DHCPDECLINE: something else answers on it).
    package mutating func decline(_ address: IPv4Address, seconds: Int64, now: Int64) {
        declined[address] = now + seconds
        for (mac, lease) in leases where lease.address == address { leases[mac] = nil }
    }

    /// The address to offer `mac`: its fixed address, its current lease, the address it asks for when
    /// free, or the lowest free address of the pool; nil when the pool is full.
    package func offer(for mac: MACAddress, requested: IPv4Address? = nil, now: Int64) -> IPv4Address? {
        if let address = fixed[mac] { return address }
        if let held = offered[mac], held.expires > now, isFree(held.address, for: mac, now: now) {
            return held.address
        }
        if let lease = leases[mac], pool.contains(lease.address),
            holder(of: lease.address, now: now).map({ $0 == mac }) ?? true
        {
            return lease.address
        }
        if let requested, isFree(requested, for: mac, now: now) { return requested }
        var candidate = pool.lowerBound.value
        while candidate <= pool.upperBound.value {
            if isFree(IPv4Address(candidate), for: mac, now: now) { return IPv4Address(candidate) }
            candidate += 1
        }
        return nil
    }

    /// Binds `address` to `mac` until `now + seconds` (a REQUEST that is ACKed).
    /// - Throws: `NetBootError(.refused)` when the address belongs to another host or lies outside the pool.
    package mutating func bind(_ address: IPv4Address, to mac: MACAddress, seconds: Int64, now: Int64) throws {
        if let own = fixed[mac] {
            guard own == address else { throw NetBootError(.refused, "\(mac) has the fixed address \(own)") }
        } else {
            guard pool.contains(address) else { throw NetBootError(.refused, "\(address) is outside the pool") }
            if let holder = holder(of: address, now: now), holder != mac {
                throw NetBootError(.refused, "\(address) is leased to \(holder)")
            }
        }
        leases[mac] = Lease(mac: mac, address: address, expires: now + seconds)
    }

    /// How long an offered address stays held for its client, waiting for its REQUEST.
    package static let offerHoldSeconds: Int64 = 60

    /// Holds an offered address for `mac` a short while (RFC 2131 section 4.3.1), so that two clients
    /// that ask at once (machines powered on together) are not offered the same address, the second
    /// then refused with a NAK, which UEFI PXE firmware does not retry.
    package mutating func reserve(_ address: IPv4Address, for mac: MACAddress, now: Int64) {
        guard fixed[mac] == nil else { return }
        offered = offered.filter { $0.value.expires > now }
        offered[mac] = Lease(mac: mac, address: address, expires: now + Self.offerHoldSeconds)
    }

    /// Ends `mac`'s lease (a RELEASE).
    package mutating func release(_ mac: MACAddress) { leases[mac] = nil }

    private func holder(of address: IPv4Address, now: Int64) -> MACAddress? {
        if let owner = fixed.first(where: { $0.value == address })?.key { return owner }
        return leases.values.first { $0.address == address && $0.expires > now }?.mac
    }

    /// Free for `mac`: in the pool, leased to no one, not declined, and not held for another client's offer.
    private func isFree(_ address: IPv4Address, for mac: MACAddress, now: Int64) -> Bool {
        pool.contains(address) && holder(of: address, now: now) == nil && (declined[address] ?? 0) <= now
            && !offered.values.contains { $0.mac != mac && $0.address == address && $0.expires > now }
    }

    /// The lease file's text, sorted by address.
    package var fileText: String {
        var text = "# kiln DHCP leases: MAC ADDRESS EXPIRES (seconds since 1970)\n"
        for lease in leases.values.sorted(by: { $0.address < $1.address }) {
            text += "\(lease.mac) \(lease.address) \(lease.expires)\n"
        }
        return text
    }

    /// Writes the lease file under a temporary name and renames it into place.
    /// - Throws: `NetBootError(.io)` naming the path.
    package func save(to path: String) throws {
        do {
            try AtomicOutput.write(fileText, to: path)
        } catch {
            throw NetBootError(.io, "cannot write the lease file \(path)", underlying: error)
        }
    }

    /// Reads the leases of `path` into this book; a missing file is an empty one.
    /// - Throws: `NetBootError(.configuration)` naming the file and line of a line that does not parse.
    package mutating func load(from path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw NetBootError(.io, "cannot read the lease file \(path)", underlying: error)
        }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: " ")
            guard fields.count == 3, let mac = MACAddress(String(fields[0])),
                let address = IPv4Address(String(fields[1])),
                let expires = Int64(fields[2])
            else {
                throw NetBootError(.configuration, "\(path):\(index + 1): not a lease line: '\(trimmed)'")
            }
            leases[mac] = Lease(mac: mac, address: address, expires: expires)
        }
    }
}
