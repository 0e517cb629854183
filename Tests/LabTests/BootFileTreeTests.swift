import Testing

@testable import Lab

@Suite("The boot files taken from Debian packages")
struct BootFileTreeTests {
    /// An x86-only lab reads no arm64 index; arm64 hosts add arm64 GRUB (from the arm64 index) and their
    /// installer (`Architecture: all`, from the amd64 one), served beside amd64's.
    @Test func arm64HostsAddTheirGRUBAndInstaller() {
        let x86 = BootFileTree.members(installers: [.init(version: 12)], architectures: [.x86_64])
        #expect(!x86.contains { $0.index != "amd64" })
        #expect(x86.contains { $0.served == "grubnetx64.efi" })
        #expect(!x86.contains { $0.served == "grubnetaa64.efi" })
        let both = BootFileTree.members(
            installers: [.init(version: 13, architecture: .aarch64), .init(version: 12)],
            architectures: [.x86_64, .aarch64])
        let grub = both.first { $0.served == "grubnetaa64.efi" }
        #expect(grub?.package == "grub-efi-arm64-signed" && grub?.index == "arm64")
        #expect(grub?.path == "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed")
        let kernel = both.first { $0.served == "debian-installer/13/arm64/linux" }
        #expect(kernel?.package == "debian-installer-13-netboot-arm64" && kernel?.index == "amd64")
        // An installer is looked for in its own release's suites, the loaders in the host's.
        #expect(kernel?.release == 13 && grub?.release == nil)
        #expect(kernel?.path == "usr/lib/debian-installer/images/13/arm64/text/debian-installer/arm64/linux")
        #expect(both.contains { $0.served == "debian-installer/12/amd64/initrd.gz" })
        #expect(
            BootFileTree.packages(installers: [.init(version: 12, architecture: .aarch64)]).filter {
                $0.contains("arm64")
            } == ["debian-installer-12-netboot-arm64", "grub-efi-arm64-signed"])
    }
}
