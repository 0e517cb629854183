import Foundation
import KilnSupport

extension Architecture {
    /// The QEMU system emulator for machines of this architecture.
    package var qemuSystem: String { "qemu-system-\(rawValue)" }

    /// The Debian package that holds `qemuSystem`.
    package var qemuPackage: String { self == .aarch64 ? "qemu-system-arm" : "qemu-system-x86" }

    /// The serial console device of kiln's machines: the PL011 UART of QEMU's `virt` board, or the
    /// PC's first 16550.
    var consoleDevice: String { self == .aarch64 ? "ttyAMA0" : "ttyS0" }

    /// Whether KVM can run this architecture's guests here: only on a host of the same architecture.
    var kvmPossible: Bool { Architecture.host == self }

    /// Checks that `executable` (default `qemuSystem`) can be run; the error names the package that installs it.
    package func requireQEMU(_ executable: String? = nil) throws(BuildVMError) {
        let name = executable ?? qemuSystem
        if name.contains("/") {
            if FileManager.default.isExecutableFile(atPath: name) { return }
        } else {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return
            }
        }
        throw BuildVMError(
            .qemu,
            "\(name) is not installed: \(rawValue) machines need it (install Debian's \(qemuPackage) package)")
    }
}
