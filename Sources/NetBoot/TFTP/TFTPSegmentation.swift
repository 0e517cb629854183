import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// UDP segmentation offload (GSO, Linux 4.18) for windowed transfers: how many DATA packets one write may
/// carry to a client. The kernel refuses a write whose segments do not fit the route's MTU, and a refused
/// write ends the transfer's socket, so the route's MTU is asked first.
enum TFTPSegmentation {
    /// Bytes of IP and UDP headers in front of each segment.
    private static let ipv4Headers = 20 + 8
    private static let ipv6Headers = 40 + 8
    /// At most this many payload bytes in one write (a UDP datagram before segmentation is at most 65507).
    static let maximumWriteBytes = 65_000
    /// The kernel's UDP_MAX_SEGMENTS since Linux 4.18 (later kernels allow more); not exposed to programs.
    static let maximumSegments = 64

    /// DATA packets of `blockSize` per write to `client` for a window of `windowSize`; 1 when offload is not
    /// available, the window is 1, or a packet would not fit the MTU of the route to the client.
    static func segmentsPerWrite(to client: SocketAddress, blockSize: Int, windowSize: Int) -> Int {
        guard windowSize > 1, System.supportsUDPSegmentationOffload, let (mtu, headers) = routeMTU(to: client)
        else { return 1 }
        let segment = 4 + blockSize
        guard segment + headers <= mtu else { return 1 }
        return max(1, min(maximumSegments, windowSize, maximumWriteBytes / segment))
    }

    /// The MTU of the route to `client` and the header bytes of its IP version, from a socket connected to
    /// it and closed again (IP_MTU and IPV6_MTU are only read on a connected socket); nil when unknown.
    static func routeMTU(to client: SocketAddress) -> (mtu: Int, headers: Int)? {
        switch client {
        case .v4(let address):
            return mtu(family: AF_INET, level: Int32(IPPROTO_IP), option: IP_MTU, address: address.address).map {
                ($0, ipv4Headers)
            }
        case .v6(let address):
            var raw = address.address
            // An IPv4 client of a socket bound to `::` (::ffff:a.b.c.d) is reached over IPv4.
            let words = withUnsafeBytes(of: &raw.sin6_addr) { Array($0) }
            if words[0..<10].allSatisfy({ $0 == 0 }) && words[10] == 0xff && words[11] == 0xff {
                var v4 = sockaddr_in()
                v4.sin_family = sa_family_t(AF_INET)
                v4.sin_port = raw.sin6_port
                withUnsafeMutableBytes(of: &v4.sin_addr) { $0.copyBytes(from: words[12..<16]) }
                return mtu(family: AF_INET, level: Int32(IPPROTO_IP), option: IP_MTU, address: v4).map {
                    ($0, ipv4Headers)
                }
            }
            return mtu(family: AF_INET6, level: Int32(IPPROTO_IPV6), option: IPV6_MTU, address: raw).map {
                ($0, ipv6Headers)
            }
        default:
            return nil
        }
    }

    private static func mtu<Address>(family: Int32, level: Int32, option: Int32, address: Address) -> Int? {
        let descriptor = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
        guard connected == 0 else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, level, option, &value, &length) == 0, value > 0 else { return nil }
        return Int(value)
    }
}
