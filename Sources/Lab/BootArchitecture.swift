/// The CPU architecture a lab host runs, as the lab file names it (`arch:`), with the names Debian and
/// GRUB give it.
package enum BootArchitecture: String, Sendable, CaseIterable, Hashable {
    case x86_64
    case aarch64

    /// Debian's name: `amd64`, `arm64` (package names, installer folders, index architectures).
    package var debian: String {
        switch self {
        case .x86_64: return "amd64"
        case .aarch64: return "arm64"
        }
    }

    /// GRUB's `${grub_cpu}`, which also names its platform folder (`arm64-efi`).
    package var grubCPU: String {
        switch self {
        case .x86_64: return "x86_64"
        case .aarch64: return "arm64"
        }
    }

    /// The removable-media loader UEFI starts from a disk with no boot entry (UEFI 2.10 section 3.5.1.1).
    package var removableLoader: String {
        switch self {
        case .x86_64: return "/EFI/BOOT/BOOTX64.EFI"
        case .aarch64: return "/EFI/BOOT/BOOTAA64.EFI"
        }
    }

    /// The GRUB network image kiln serves to this architecture's UEFI firmware.
    package var grubNetImage: String {
        switch self {
        case .x86_64: return "grubnetx64.efi"
        case .aarch64: return "grubnetaa64.efi"
        }
    }
}
