import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Programs the tests use as real peers, looked up once.
package enum Tools {
    package static func has(_ program: String) -> Bool { Requirement.hasProgram(program) }

    package static let tftpClients = has("tftp") && has("atftp") && has("curl") && has("sha256sum")
    /// Network namespaces need root and iproute2.
    package static let namespaces: Bool = getuid() == 0 && has("ip")

    /// The `kiln` executable beside the test bundle (`swift build --build-tests` builds both).
    package static var kiln: String { KilnProgram.path ?? "kiln" }
}

/// Runs a program to its end (killed after `timeout` seconds) and returns its exit status and output.
@discardableResult
package func runTool(_ arguments: [String], timeout: Int = 120) async throws -> (
    status: Subprocess.Termination, output: String
) {
    let (status, output) = try await Subprocess.output(["timeout", "-k", "5", "\(timeout)"] + arguments)
    return (status, output)
}

package func sha256(_ path: String) async throws -> String {
    let (_, output) = try await Subprocess.output(["sha256sum", path])
    return String(output.prefix(64))
}
