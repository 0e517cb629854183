import Foundation
import KilnSupport
import KilnTestSupport
import Testing

/// `kiln serve --config` as a user meets it on the command line.
@Suite("kiln serve --config on the command line")
struct LabCommandTests {
    @Test func aBrokenLabFileIsReportedWithPositionsAndNothingIsServed() async throws {
        let folder = try TemporaryFolder()
        let config = try LabFixtures.write(
            "address: 192.0.2.300\ndhcp:\n  mode: server\nhosts:\n  - mac: \"52:54:00:12:34:56\"\n", into: folder.path)
        let (status, output) = try await runTool([Tools.kiln, "serve", "--config", config], timeout: 30)
        #expect(status == .exited(1), "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(config):1:10: error: address '192.0.2.300' is not an IPv4 address"), "\(output)")
        #expect(lines.contains("\(config):3:3: error: dhcp mode 'server' needs a range (FIRST-LAST)"), "\(output)")
        #expect(lines.contains("\(config):5:5: error: a host needs a 'name'"), "\(output)")
        #expect(!output.contains("kiln: serving"))
    }

    /// A socket that cannot be bound after another one was (HTTP on an address this machine does not have,
    /// TFTP already listening) is an error that names it, not a crash.
    @Test func aSocketThatCannotBeBoundAfterAnotherIsAnErrorNotACrash() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/root", withIntermediateDirectories: true)
        let config = try LabFixtures.write(
            "address: 192.0.2.1\ntftp: \"127.0.0.1:0\"\nhttp: \"203.0.113.9:8080\"\ndhcp: {mode: off}\n",
            into: folder.path)
        let (status, output) = try await runTool(
            [Tools.kiln, "serve", "--config", config, "--tftp-root", folder.path + "/root"], timeout: 30)
        #expect(status == .exited(1), "\(output)")
        #expect(output.contains("kiln: error: cannot listen for HTTP on 203.0.113.9:8080"), "\(output)")
    }

    @Test func optionsThatNeedALabFileAreUsageErrors() async throws {
        let folder = try TemporaryFolder()
        let (status, output) = try await runTool([Tools.kiln, "serve", "--tftp-root", folder.path, "--offline"])
        #expect(status == .exited(2), "\(output)")
        #expect(output.contains("--offline, --prepare and --reinstall go with --config"), "\(output)")
    }
}
