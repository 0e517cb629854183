import Foundation
import Testing

@testable import Appliance
@testable import Autoinstall

@Suite struct ImportTests {
    /// description -> kickstart -> description -> kickstart gives the same kickstart twice.
    private func roundTrip(_ appliance: Appliance) throws -> (String, String, String) {
        let first = try KickstartRenderer().render(appliance)
        let imported = try KickstartImporter().read(first, name: "imported").appliance
        let yaml = ApplianceWriter.yaml(imported)
        let dir = NSTemporaryDirectory() + "kiln-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try yaml.write(toFile: dir + "/imported.yaml", atomically: true, encoding: .utf8)
        let reloaded = try ApplianceLoader().load(dir + "/imported.yaml")
        return (first, try KickstartRenderer().render(reloaded), yaml)
    }

    @Test(arguments: ["fedora-server.yaml", "rocky-9.yaml", "boxgrinder-jeos.appl"])
    func roundTripOfTheExamplesGivesTheSameKickstart(name: String) throws {
        let (first, second, _) = try roundTrip(try ApplianceLoader().load("\(packageRoot)/Appliances/\(name)"))
        #expect(first == second)
    }

    @Test func roundTripKeepsEverythingButEmbeddedFiles() throws {
        var appliance = try loadFixture("full-rocky.yaml")
        appliance.files = []
        let (first, second, yaml) = try roundTrip(appliance)
        #expect(first == second)
        #expect(!yaml.contains("ops-password") && yaml.contains("password_hash"))
    }

    @Test func readsHandWrittenKickstarts() throws {
        let kickstart = """
            # a hand-written kickstart
            lang en_US.UTF-8
            keyboard us
            timezone America/New_York --utc
            rootpw --plaintext hunter22
            url --url=http://mirror.example.org/almalinux/9/BaseOS/x86_64/os/
            repo --name="extra" --baseurl=http://mirror.example.org/extra/ --cost 50
            network --bootproto=dhcp --device=eth0
            bootloader --append="console=ttyS0,9600 crashkernel=auto"
            autopart
            part /data --size 2048 --fstype xfs --grow
            %pre
            echo ignored
            %end
            %packages --ignoremissing
            @core
            vim-enhanced
            -iwl*-firmware
            %end
            %post
            echo "first"
            systemctl enable sshd
            %end
            xconfig --startxonboot
            """
        let result = try KickstartImporter().read(kickstart, name: "handmade")
        let appliance = result.appliance
        #expect(appliance.name == "handmade")
        #expect(appliance.os.name == .almalinux && appliance.os.version == "9")
        #expect(appliance.os.timezone == "America/New_York")
        #expect(appliance.os.passwordHash?.hasPrefix("$6$") == true)
        #expect(PasswordHash.crypt("hunter22", setting: appliance.os.passwordHash ?? "") == appliance.os.passwordHash)
        #expect(!appliance.defaultRepos)
        #expect(appliance.repos.map(\.name) == ["install", "extra"])
        #expect(appliance.repos[1].cost == 50 && appliance.repos[1].ephemeral)
        #expect(appliance.network == [NetworkInterface(interface: "eth0")])
        #expect(appliance.console == SerialConsole(device: "ttyS0", speed: 9600))
        #expect(appliance.kernelArgs == "crashkernel=auto")
        #expect(
            appliance.hardware.partitions == [
                Partition(mountPoint: "/data", size: Size(mebibytes: 2048), type: .xfs, grow: true)
            ])
        #expect(appliance.packages == ["@core", "vim-enhanced", "-iwl*-firmware"])
        #expect(appliance.post.base == ["echo \"first\"\nsystemctl enable sshd"])
        #expect(result.warnings.contains { $0.contains("%pre") })
        #expect(result.warnings.contains { $0.contains("xconfig") })
    }

    @Test func autopartGivesTheDefaultLayout() throws {
        let appliance = try KickstartImporter().read("autopart\n", name: "x").appliance
        #expect(appliance.hardware.partitions == [Partition.defaultRoot])
    }

    @Test func unterminatedQuotesAreAnError() {
        #expect(throws: AutoinstallError.self) { _ = try KickstartImporter().read("rootpw \"abc\n", name: "x") }
    }
}
