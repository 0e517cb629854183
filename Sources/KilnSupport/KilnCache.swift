import Foundation

/// Where kiln keeps what it fetched and made (packages, indexes, builder guests, configured bases,
/// the KVM record): one folder for every part of kiln.
package enum KilnCache {
    /// `$KILN_CACHE`, else `$XDG_CACHE_HOME/kiln` (an absolute one, as the XDG base directory
    /// specification asks), else `~/.cache/kiln`.
    package static func root(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["KILN_CACHE"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return "\(xdg)/kiln" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.cache/kiln"
    }
}
