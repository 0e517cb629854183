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

    /// QEMU's UEFI firmware for this architecture, code and variable-store template, where Debian
    /// installs it: OVMF (`ovmf`) for x86_64, AAVMF (`qemu-efi-aarch64`, 64 MiB each, the size of the
    /// `virt` board's flash banks) for aarch64.
    package var uefiFirmware: (code: String, variables: String) {
        switch self {
        case .x86_64: return ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd")
        case .aarch64: return ("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd")
        }
    }

    /// The names, for messages: "x86_64 or aarch64".
    package static var names: String { allCases.map(\.rawValue).joined(separator: " or ") }
}
