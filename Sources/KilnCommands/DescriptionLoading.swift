import Appliance

extension ApplianceLoader {
    /// Loads a description for a command, turning its problems into `FILE:LINE:COL: error:` lines.
    static func loadForCommand(_ path: String) throws(CommandFailure) -> Appliance {
        do {
            return try ApplianceLoader().load(path)
        } catch {
            throw CommandFailure(lines: error.diagnostics.map(\.description))
        }
    }
}
