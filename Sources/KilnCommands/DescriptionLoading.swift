import Appliance
import Foundation

extension ApplianceLoader {
    /// The loader commands use: BoxGrinder descriptions may take `#NAME#` variables from kiln's
    /// environment, as BoxGrinder did.
    static var forCommands: ApplianceLoader {
        ApplianceLoader(environment: ProcessInfo.processInfo.environment)
    }

    /// Loads a description for a command, turning its problems into `FILE:LINE:COL: error:` lines;
    /// warnings go to standard error as `FILE:LINE:COL: warning:` lines.
    static func loadForCommand(_ path: String) throws(CommandFailure) -> Appliance {
        do {
            let (appliance, warnings) = try forCommands.loadWithWarnings(path)
            for warning in warnings { Console.standardError.write(warning.description) }
            return appliance
        } catch {
            throw CommandFailure(lines: (error.warnings + error.diagnostics).map(\.description))
        }
    }
}
