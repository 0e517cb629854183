import Foundation
import KilnTestSupport
import Logging
import NIOCore
import Testing

@testable import NetBoot

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP client on loopback made of plain sockets, so that it can do what real clients should not:
/// never read, never send, trickle.
private final class RawClient {
    let fd: Int32

    init?(port: Int, receiveBuffer: Int32? = nil) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } }

    /// Whether the server closed the connection within `seconds` (EOF or reset, anything already sent
    /// read and dropped).
    func closedByServer(within seconds: Int) -> Bool {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }
}

private func residentMiB(_ pid: pid_t) -> Int {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
}

private func openDescriptors(_ pid: pid_t) -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
}

/// What one HTTP client can hold of `kiln serve`: memory, descriptors, time.
@Suite("kiln serve: HTTP clients that do not play along", .serialized)
struct HTTPLimitsTests {
    /// Clients that request a 64 MiB file and never read it: each may hold a chunk, not the file.
    @Test(.requiresPrograms(["curl"]))
    func clientsThatDoNotReadKeepMemoryBounded() async throws {
        let folder = try TemporaryFolder()
        try folder.randomFile("root/big.img", size: 64 << 20)
        try await withKilnServer(root: folder.path + "/root", http: true, logDir: folder.path) { server in
            let port = try #require(server.httpPort)
            let pid = server.process.processID
            let before = residentMiB(pid)
            var clients: [RawClient] = []
            for _ in 0..<150 {
                let client = try #require(RawClient(port: port, receiveBuffer: 4096))
                client.send("GET /big.img HTTP/1.1\r\nHost: kiln\r\n\r\n")
                clients.append(client)
            }
            try await Task.sleep(for: .seconds(5))
            let held = residentMiB(pid)
            // Before the fix: about 6 MB per client (150 clients: +800 MB).
            #expect(held - before < 150, "RSS went from \(before) MiB to \(held) MiB with 150 clients not reading")
            clients.removeAll()
            // The server still answers a client that reads.
            let (status, output) = try await runTool([
                "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                "http://127.0.0.1:\(port)/big.img",
            ])
            #expect(status.succeeded && output == "200 \(64 << 20)", "\(output)")
            #expect(server.isRunning)
        }
    }

    /// 2000 idle connections against a kiln allowed 1024 descriptors: HTTP closes what it cannot keep,
    /// and TFTP still serves.
    @Test(.requiresPrograms(["curl", "prlimit"]))
    func idleConnectionsDoNotStarveTFTP() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try #require(limit.rlim_max >= 4096, "the test itself needs 2000 descriptors (hard limit \(limit.rlim_max))")
        if limit.rlim_cur < 4096 {
            limit.rlim_cur = min(limit.rlim_max, 8192)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/pxelinux.0", size: 300_000)
        try await withKilnServer(
            root: folder.path + "/root", http: true, wrapper: ["prlimit", "--nofile=1024:1024"], logDir: folder.path
        ) { server in
            let port = try #require(server.httpPort)
            var clients: [RawClient] = []
            for _ in 0..<2000 {
                if let client = RawClient(port: port) { clients.append(client) }
            }
            try await Task.sleep(for: .seconds(2))
            let descriptors = openDescriptors(server.process.processID)
            #expect(descriptors < 1000, "kiln holds \(descriptors) descriptors")
            let out = folder.path + "/out"
            let (status, output) = try await runTool([
                "curl", "-sS", "-o", out, "tftp://127.0.0.1:\(server.port)/pxelinux.0",
            ])
            #expect(status.succeeded, "\(output)")
            #expect(try await sha256(out) == (try await sha256(source)))
            #expect(!server.logText.contains("Too many open files"), "\(server.logText.suffix(2000))")
            #expect(server.isRunning)
            _ = clients
        }
    }

    @Test func idleAndSlowClientsTimeOut() async throws {
        let folder = try TemporaryFolder()
        try folder.randomFile("root/file", size: 8 << 20)
        let root = try BootRoot(folder.path + "/root")
        let limits = HTTPLimits(maxConnections: 4, requestTimeout: .seconds(1), sendTimeout: .seconds(1))
        let http = try await HTTPBootServer.bind(
            host: "127.0.0.1", port: 0, root: root, limits: limits, logger: Logger(label: "test"))
        let port = http.boundAddress.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await http.run() }
            // Sends nothing.
            let idle = try #require(RawClient(port: port))
            // Sends its header a byte a second: never done within the request timeout.
            let trickle = try #require(RawClient(port: port))
            trickle.send("G")
            // Asks for 8 MiB and reads none of it.
            let stalled = try #require(RawClient(port: port, receiveBuffer: 4096))
            stalled.send("GET /file HTTP/1.1\r\nHost: kiln\r\n\r\n")
            let started = ContinuousClock.now
            for i in 0..<3 {
                try await Task.sleep(for: .milliseconds(400))
                trickle.send("ET /file"[i...i])
            }
            #expect(idle.closedByServer(within: 10))
            #expect(trickle.closedByServer(within: 10))
            #expect(stalled.closedByServer(within: 10))
            #expect(ContinuousClock.now - started < .seconds(8))

            group.cancelAll()
        }
    }

    @Test func connectionsPastTheCapAreClosedAtOnce() async throws {
        let folder = try TemporaryFolder()
        try folder.randomFile("root/file", size: 4096)
        let root = try BootRoot(folder.path + "/root")
        // A request timeout far beyond the wait below: a close within it is the cap's, however
        // loaded the machine.
        let limits = HTTPLimits(maxConnections: 4, requestTimeout: .seconds(120), sendTimeout: .seconds(120))
        let http = try await HTTPBootServer.bind(
            host: "127.0.0.1", port: 0, root: root, limits: limits, logger: Logger(label: "test"))
        let port = http.boundAddress.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await http.run() }
            let held = (0..<4).compactMap { _ in RawClient(port: port) }
            #expect(held.count == 4)
            try await Task.sleep(for: .milliseconds(200))
            let extra = try #require(RawClient(port: port))
            #expect(extra.closedByServer(within: 60), "the fifth connection was not closed by the cap")
            // The four held ones still stand.
            #expect(!held[0].closedByServer(within: 1))
            group.cancelAll()
        }
    }
}

extension String {
    fileprivate subscript(range: ClosedRange<Int>) -> String {
        let start = index(startIndex, offsetBy: range.lowerBound)
        let end = index(startIndex, offsetBy: range.upperBound)
        return String(self[start...end])
    }
}
