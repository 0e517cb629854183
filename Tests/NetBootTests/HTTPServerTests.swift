import Foundation
import KilnTestSupport
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import NetBoot

/// `kiln serve`'s HTTP side against curl: whole files, HEAD, byte ranges, refusals.
@Suite("kiln serve over HTTP", .serialized, .requires(.program("curl"), .program("sha256sum")))
struct HTTPServerTests {
    @Test func filesRangesAndRefusals() async throws {
        let folder = try TemporaryFolder()
        let source = try folder.randomFile("root/initrd.gz", size: 3 * 1024 * 1024 + 17)
        try Data("SECRET".utf8).write(to: URL(fileURLWithPath: folder.path + "/secret"))
        try FileManager.default.createSymbolicLink(
            atPath: folder.path + "/root/escape", withDestinationPath: "../secret")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        try await withKilnServer(root: folder.path + "/root", http: true, logDir: folder.path) { server in
            let base = "http://127.0.0.1:\(try #require(server.httpPort))"
            let out = folder.path + "/out"

            let (whole, wholeOutput) = try await runTool(["curl", "-sS", "-f", "-o", out, "\(base)/initrd.gz"])
            #expect(whole.succeeded, "\(wholeOutput)")
            #expect(try await sha256(out) == (try await sha256(source)))

            let (_, head) = try await runTool(["curl", "-sS", "-I", "\(base)/initrd.gz"])
            #expect(head.contains("Content-Length: \(bytes.count)"))
            #expect(head.contains("Accept-Ranges: bytes"))

            for (range, expected) in [
                ("100-1123", bytes[100..<1124]), ("-100", bytes[(bytes.count - 100)...]),
                ("3145700-", bytes[3_145_700...]),
            ] {
                let (status, output) = try await runTool(
                    ["curl", "-sS", "-o", out, "-w", "%{http_code}", "-r", range, "\(base)/initrd.gz"])
                #expect(status.succeeded && output == "206", "range \(range): \(output)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(expected), "range \(range)")
            }

            func code(_ path: String, _ extra: [String] = []) async throws -> (String, String) {
                try? FileManager.default.removeItem(atPath: out)
                let (_, status) = try await runTool(
                    ["curl", "-sS", "--path-as-is", "-o", out, "-w", "%{http_code}"] + extra + [base + path])
                return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
            }
            #expect(try await code("/initrd.gz", ["-r", "99999999-"]).0 == "416")
            #expect(try await code("/missing").0 == "404")
            for path in ["/../secret", "/%2e%2e/secret", "/escape", "/..%5csecret", "/a%00b"] {
                let (status, body) = try await code(path)
                #expect(status == "403" || status == "404", "\(path): \(status)")
                #expect(!body.contains("SECRET"), "\(path)")
            }
            #expect(try await code("/initrd.gz", ["-X", "PUT"]).0 == "405")
            #expect(server.isRunning)
        }
    }

    @Test func generatedFilesComeFromMemoryOverTFTPAndHTTP() async throws {
        let folder = try TemporaryFolder()
        try Data("from disk\n".utf8).write(to: URL(fileURLWithPath: try folder.randomFile("root/disk.txt", size: 0)))
        let generated = GeneratedFiles { path, client in
            guard path.hasPrefix("pxelinux.cfg/") else { return nil }
            return Array("# \(path) for \(client.transport.rawValue)\ndefault local\n".utf8)
        }
        let root = try BootRoot(folder.path + "/root")
        let logger = Logger(label: "test")
        let tftp = try await TFTPServer.bind(
            host: "127.0.0.1", port: 0, configuration: TFTPServerConfiguration(root: root, generated: generated),
            logger: logger)
        let http = try await HTTPBootServer.bind(
            host: "127.0.0.1", port: 0, root: root, generated: generated, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await tftp.run() }
            group.addTask { try await http.run() }
            let name = "pxelinux.cfg/01-52-54-00-12-34-56"
            let (_, viaTFTP) = try await runTool(["curl", "-sS", "tftp://127.0.0.1:\(tftp.boundAddress.port)/\(name)"])
            #expect(viaTFTP == "# \(name) for tftp\ndefault local\n")
            let (_, viaHTTP) = try await runTool(["curl", "-sS", "http://127.0.0.1:\(http.boundAddress.port)/\(name)"])
            #expect(viaHTTP == "# \(name) for http\ndefault local\n")
            let (_, disk) = try await runTool(["curl", "-sS", "tftp://127.0.0.1:\(tftp.boundAddress.port)/disk.txt"])
            #expect(disk == "from disk\n")
            group.cancelAll()
        }
    }
}

@Suite("HTTP byte ranges")
struct ByteRangeTests {
    @Test func byteRangeHeaders() {
        #expect(ByteRange.parse("bytes=0-0", size: 10) == .range(0..<1))
        #expect(ByteRange.parse("bytes=5-", size: 10) == .range(5..<10))
        #expect(ByteRange.parse("bytes=-3", size: 10) == .range(7..<10))
        #expect(ByteRange.parse("bytes=-30", size: 10) == .range(0..<10))
        #expect(ByteRange.parse("bytes=8-100", size: 10) == .range(8..<10))
        #expect(ByteRange.parse("bytes=10-", size: 10) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=0-1,4-5", size: 10) == .whole)
        #expect(ByteRange.parse("items=0-1", size: 10) == .whole)
        #expect(ByteRange.parse("bytes=5-2", size: 10) == .whole)
        // Found by make fuzz: end + 1 overflowed and a single request header killed kiln serve.
        #expect(ByteRange.parse("bytes=0-9223372036854775807", size: 10) == .range(0..<10))
        #expect(ByteRange.parse("bytes=3-9223372036854775807", size: Int.max) == .range(3..<Int.max))
    }
}
