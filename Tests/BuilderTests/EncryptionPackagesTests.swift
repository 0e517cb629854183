import Appliance
import Foundation
import KilnTestSupport
import Packages
import Testing

@testable import Builder

/// What an encrypted partition adds to the image's packages, release by release.
@Suite struct EncryptionPackagesTests {
    static let archive = ArchiveSource(uri: "http://archive.invalid/debian", suite: "trixie", components: ["main"])

    private func packages(version: String, encrypted mountPoints: [String]) throws -> [String] {
        var appliance = try ApplianceLoader().load("\(KilnProgram.packageRoot)/Appliances/debian-minimal.yaml")
        appliance.os.version = version
        for mountPoint in mountPoints {
            if let index = appliance.hardware.partitions.firstIndex(where: { $0.mountPoint == mountPoint }) {
                appliance.hardware.partitions[index].passphrase = "secret"
            } else {
                var partition = appliance.hardware.partitions[0]
                partition.mountPoint = mountPoint
                partition.grow = false
                partition.passphrase = "secret"
                appliance.hardware.partitions.append(partition)
            }
        }
        return try PackageRequest(appliance: appliance, hostSources: [Self.archive]).packages
    }

    /// Debian 13 moved systemd's crypttab generator into systemd-cryptsetup: an encrypted /srv needs it
    /// there (without it the boot waits for the device and drops to the emergency shell), not on 12,
    /// whose systemd has it, nor for a / that the initramfs unlocks.
    @Test func anEncryptedSrvOnDebian13TakesSystemdCryptsetup() throws {
        let trixie = try packages(version: "13", encrypted: ["/srv"])
        #expect(trixie.contains("systemd-cryptsetup") && trixie.contains("cryptsetup"))
        #expect(try packages(version: "trixie", encrypted: ["/", "/srv"]).contains("systemd-cryptsetup"))
        let rootOnly = try packages(version: "13", encrypted: ["/"])
        #expect(!rootOnly.contains("systemd-cryptsetup") && rootOnly.contains("cryptsetup-initramfs"))
        #expect(!(try packages(version: "12", encrypted: ["/srv"])).contains("systemd-cryptsetup"))
        #expect(!(try packages(version: "13", encrypted: [])).contains("cryptsetup"))
    }
}
