import Foundation
import KilnSupport
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

    @Test func optionsThatNeedALabFileAreUsageErrors() async throws {
        let folder = try TemporaryFolder()
        let (status, output) = try await runTool([Tools.kiln, "serve", "--tftp-root", folder.path, "--offline"])
        #expect(status == .exited(2), "\(output)")
        #expect(output.contains("--offline and --prepare go with --config"))
    }
}
