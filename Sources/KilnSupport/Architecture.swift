#if canImport(Glibc)
    import Glibc
#endif

/// A machine architecture kiln builds images for, named as the description's `hardware.arch` and
/// QEMU name it; Debian's name for it is `debianName`.
package enum Architecture: String, Sendable, CaseIterable, Codable {
    case x86_64
    case aarch64

    /// Debian's architecture name: `amd64`, `arm64`.
    package var debianName: String {
        switch self {
        case .x86_64: return "amd64"
        case .aarch64: return "arm64"
        }
    }

    /// The architecture whose Debian name is `name`.
    package init?(debianName name: String) {
        guard let match = Self.allCases.first(where: { $0.debianName == name }) else { return nil }
        self = match
    }

    /// The GNU multiarch triplet of Debian's library directories (`lib/aarch64-linux-gnu`).
    package var multiarchTriplet: String { "\(rawValue)-linux-gnu" }

    /// The architecture this kiln runs on (from `uname -m`), if it is one kiln knows.
    package static var host: Architecture? {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return machine == "arm64" ? .aarch64 : Architecture(rawValue: machine)
    }

    /// The names, for messages: "x86_64 or aarch64".
    package static var names: String { allCases.map(\.rawValue).joined(separator: " or ") }
}
