/// Every error the NetBoot library throws: a code to branch on, a message naming the path, address or
/// value, and the underlying error where there is one.
package struct NetBootError: Error, Sendable, CustomStringConvertible {
    package enum Code: Sendable, Equatable {
        /// A packet that does not follow its protocol (TFTP, DHCP).
        case malformedPacket
        /// A request the server refuses (a write, a path outside the root, a bad option).
        case refused
        /// A file that is not there.
        case notFound
        /// A socket, file or address problem.
        case io
        /// The peer stopped answering.
        case timedOut
        /// Bad configuration (an address, a port, a missing root).
        case configuration
    }

    package var code: Code
    package var message: String
    package var underlying: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    package var description: String {
        if let underlying { return "\(message): \(underlying)" }
        return message
    }
}
