import Appliance
import Foundation
import KilnSupport

extension ApplianceLoader {
    /// The loader commands use: BoxGrinder descriptions may take `#NAME#` variables from kiln's
    /// environment, as BoxGrinder did; `files` outside a description's folder are read only with
    /// `KILN_ALLOW_OUTSIDE_FILES=1`.
    static var forCommands: ApplianceLoader { forCommands(arch: nil) }

    /// The same, building for `arch` whatever the description says (`--arch`) when one is given.
    static func forCommands(arch: Architecture?) -> ApplianceLoader {
        let environment = ProcessInfo.processInfo.environment
        return ApplianceLoader(
            arch: arch, environment: environment, allowOutsideFiles: environment["KILN_ALLOW_OUTSIDE_FILES"] == "1")
    }

    /// Loads a description for a command, turning its problems into `FILE:LINE:COL: error:` lines;
    /// warnings go to standard error as `FILE:LINE:COL: warning:` lines.
    static func loadForCommand(_ path: String, arch: Architecture? = nil) throws(CommandFailure) -> Appliance {
        do {
            let (appliance, warnings) = try forCommands(arch: arch).loadWithWarnings(path)
            for warning in warnings { Console.standardError.write(warning.description) }
            return appliance
        } catch {
            throw CommandFailure(lines: (error.warnings + error.diagnostics).map(\.description))
        }
    }
}
