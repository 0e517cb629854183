import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A bare UDP socket for sending exact bytes to the server: malformed packets, traversal names, a
/// stranger's ACK. Loopback only.
package final class RawUDP: @unchecked Sendable {
    // @unchecked: the descriptor and flag never change; a test uses the socket from one task at a time.
    package let descriptor: Int32
    package let ipv6: Bool

    package init(ipv6: Bool = false) throws {
        self.ipv6 = ipv6
        descriptor = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
    }

    deinit { close(descriptor) }

    /// Sends `bytes` to the loopback address at `port`.
    package func send(_ bytes: [UInt8], to port: Int) {
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(port).bigEndian
            address.sin6_addr = in6addr_loopback
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(port).bigEndian
            address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The next datagram and the port it came from, or nil after `timeout`.
    /// `receive` on a thread of its own, so that waiting does not hold one of the few threads that
    /// Swift's concurrency pool has here (the server under test may need it to answer).
    package func receiveOffPool(timeout: Duration = .milliseconds(500)) async -> (bytes: [UInt8], port: Int)? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.receive(timeout: timeout)) }
        }
    }

    package func receive(timeout: Duration = .milliseconds(500)) -> (bytes: [UInt8], port: Int)? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536 + 4)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(descriptor, &buffer, buffer.count, 0, $0, &length)
            }
        }
        guard count >= 0 else { return nil }
        let port = withUnsafePointer(to: &storage) { pointer -> Int in
            if ipv6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(in_port_t(bigEndian: $0.pointee.sin6_port))
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                Int(in_port_t(bigEndian: $0.pointee.sin_port))
            }
        }
        return (Array(buffer[0..<count]), port)
    }
}

/// TFTP packets written by hand, independent of the codec under test.
package enum Wire {
    package static func request(
        _ opcode: UInt8, _ name: [UInt8], mode: String = "octet", options: [(String, String)] = []
    )
        -> [UInt8]
    {
        var bytes: [UInt8] = [0, opcode] + name + [0] + Array(mode.utf8) + [0]
        for (key, value) in options { bytes += Array(key.utf8) + [0] + Array(value.utf8) + [0] }
        return bytes
    }

    package static func rrq(_ name: String, options: [(String, String)] = []) -> [UInt8] {
        request(1, Array(name.utf8), options: options)
    }

    package static func ack(_ block: UInt16) -> [UInt8] { [0, 4, UInt8(block >> 8), UInt8(block & 0xFF)] }

    package static func opcode(_ bytes: [UInt8]) -> UInt16? {
        bytes.count >= 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }

    package static func number(_ bytes: [UInt8]) -> UInt16? {
        bytes.count >= 4 ? UInt16(bytes[2]) << 8 | UInt16(bytes[3]) : nil
    }
}
