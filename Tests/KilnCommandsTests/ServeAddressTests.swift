import Foundation
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `kiln serve --tftp-root DIR --tftp 127.0.0.1:PORT` serves the folder on loopback only: no HTTP
/// server on every address that the user did not ask for.
@Suite(
    .requires(
        KilnProgram.isBuilt && FileManager.default.isExecutableFile(atPath: "/usr/bin/ss"),
        "the kiln binary and ss (iproute2) to list its sockets"))
struct ServeAddressTests {
    /// Starts kiln serve with `arguments`, waits for it to report its servers, and returns what it
    /// printed and the local addresses its listening sockets are bound to.
    private func serve(_ arguments: [String]) throws -> (log: String, listening: [String]) {
        let dir = NSTemporaryDirectory() + "kiln-serve-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hello\n".write(toFile: dir + "/root/hello.txt", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/log"))
        let process = KilnProgram.process(["serve", "--tftp-root", dir + "/root"] + arguments)
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            process.waitUntilExit()
            try? log.close()
        }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && process.isRunning {
            text = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
            if text.contains("TFTP on") && (text.contains("HTTP on") || text.contains("no HTTP")) { break }
            usleep(100_000)
        }
        // Let a server that would start after the ones reported bind too.
        usleep(500_000)
        text = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        ss.arguments = ["-H", "-l", "-n", "-p", "-t", "-u"]
        let out = Pipe()
        ss.standardOutput = out
        try ss.run()
        let table = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ss.waitUntilExit()
        let mine = table.split(separator: "\n").filter { $0.contains("pid=\(process.processIdentifier),") }
        // Columns: netid state recv-q send-q local peer process.
        let listening = mine.compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count > 4 ? String(fields[4]) : nil
        }
        return (text, listening)
    }

    @Test func loopbackTFTPKeepsHTTPOnLoopback() throws {
        let port = 20000 + Int.random(in: 0..<20000)
        let (log, listening) = try serve(["--tftp", "127.0.0.1:\(port)"])
        #expect(log.contains("TFTP on 127.0.0.1:\(port)"), "\(log)")
        #expect(!listening.isEmpty, "kiln serve listens nowhere: \(log)")
        for address in listening {
            #expect(address.hasPrefix("127.0.0.1:"), "kiln serve listens on \(address), beyond loopback\n\(log)")
        }
        #expect(!log.contains("[::]"), "\(log)")
    }

    @Test func httpWhereAskedFor() throws {
        let tftpPort = 20000 + Int.random(in: 0..<20000)
        let (log, listening) = try serve(["--tftp", "127.0.0.1:\(tftpPort)", "--http", "127.0.0.1:0"])
        #expect(log.contains("HTTP on 127.0.0.1:"), "\(log)")
        #expect(listening.count == 2, "\(listening)")
        #expect(listening.allSatisfy { $0.hasPrefix("127.0.0.1:") }, "\(listening)")
    }
}
