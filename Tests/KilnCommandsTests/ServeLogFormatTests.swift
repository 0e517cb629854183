import Foundation
import KilnTestSupport
import Testing

@testable import KilnCommands

#if canImport(Glibc)
    import Glibc
#endif

/// `kiln serve`'s log as an admin reads it: each line starts with its event, clients show as
/// ADDR:PORT, then `key=value`s (values with spaces quoted), the level when it is not info, the time.
/// Judged with real clients (tftp-hpa's tftp, curl) against a served folder on loopback.
@Suite(.requires(.kilnBinary, .program("curl"), .file("/usr/bin/tftp")))
struct ServeLogFormatTests {
    @Test func linesStartWithTheEventAndNameClientsAsAddressAndPort() throws {
        let dir = NSTemporaryDirectory() + "kiln-serve-log-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hello\n".write(toFile: dir + "/root/hello.txt", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/log"))
        let tftpPort = 20000 + Int.random(in: 0..<20000)
        let httpPort = tftpPort + 1
        let process = KilnProgram.process([
            "serve", "--tftp-root", dir + "/root", "--tftp", "127.0.0.1:\(tftpPort)", "--http",
            "127.0.0.1:\(httpPort)",
        ])
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            process.waitUntilExit()
            try? log.close()
        }
        func text() -> String { (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && process.isRunning && !text().contains("HTTP on") { usleep(100_000) }
        // A port taken by another program ends kiln serve at once; tftp-hpa would then wait for ever.
        try #require(process.isRunning && text().contains("HTTP on"), "kiln serve did not start: \(text())")

        try run([
            "timeout", "30", "/usr/bin/tftp", "127.0.0.1", "\(tftpPort)", "-c", "get", "hello.txt", dir + "/got.txt",
        ])
        try run(["timeout", "30", "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(httpPort)/hello.txt"])
        try run(["timeout", "30", "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(httpPort)/no-such-file"])
        // A transfer's line is written when it ends, which on a loaded machine can come after the
        // client exits: wait for all three, up to 15 s.
        let logged = Date().addingTimeInterval(15)
        while Date() < logged,
            !["tftp: sent ", "http: sent ", "http: not served "].allSatisfy({ prefix in
                text().split(separator: "\n").contains { $0.hasPrefix(prefix) }
            })
        { usleep(100_000) }
        let lines = text().split(separator: "\n").map(String.init)
        let time = /time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/
        // tftp-hpa asks in netascii: "hello\n" goes out as "hello\r\n".
        let tftpLine = /^tftp: sent client=127\.0\.0\.1:\d+ bytes=7 file=hello\.txt time=/
        let httpLine = /^http: sent client=127\.0\.0\.1:\d+ bytes=6 path=\/hello\.txt status=200 time=/
        let notFound = #/ error="[^"]* not found" /#
        let tftp = lines.first { $0.hasPrefix("tftp: sent ") } ?? ""
        let http = lines.first { $0.hasPrefix("http: sent ") } ?? ""
        let refused = lines.first { $0.hasPrefix("http: not served ") } ?? ""
        let tftpShaped = tftp.contains(tftpLine) && tftp.contains(time)
        let httpShaped = http.contains(httpLine) && http.contains(time)
        let refusedShaped = refused.contains(notFound)
        #expect(tftpShaped, "\(lines)")
        #expect(httpShaped, "\(lines)")
        #expect(refusedShaped, "\(lines)")
        #expect(!lines.contains { $0.contains("[IPv4]") || $0.contains("[NetBoot]") }, "\(lines)")
    }

    private func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
        process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
    }

    @Test func valuesWithSpacesOrQuotesAreQuotedOnce() {
        #expect(ServeLogHandler.quoted("pxelinux.0") == "pxelinux.0")
        #expect(ServeLogHandler.quoted("disk too small") == "\"disk too small\"")
        #expect(ServeLogHandler.quoted("a=b") == "\"a=b\"")
        #expect(ServeLogHandler.quoted("say \"hi\"") == "\"say \\\"hi\\\"\"")
        // Already escaped by LogText.escape: left as it is.
        #expect(ServeLogHandler.quoted("x \\\"y") == "\"x \\\"y\"")
        #expect(ServeLogHandler.quoted("") == "\"\"")
        let line = ServeLogHandler.line(
            message: "lab: web-01 deploy failed", level: .warning,
            metadata: ["reason": "disk too small", "client": "192.0.2.21:4711", "bytes": "0"],
            time: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(
            line
                == "lab: web-01 deploy failed client=192.0.2.21:4711 bytes=0 reason=\"disk too small\" level=warning time=2023-11-14T22:13:20Z"
        )
    }
}
