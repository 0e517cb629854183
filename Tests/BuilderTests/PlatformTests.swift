import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Packages
import Testing

@testable import Builder

/// `--platform`: the platform's guest packages, the generic kernel where its emulated devices need
/// it, and its post list.
@Suite struct PlatformTests {
    static let description = "\(KilnProgram.packageRoot)/Appliances/debian-minimal.yaml"
    static let someArchive = ArchiveSource(
        uri: "http://archive.invalid/debian", suite: "bookworm", components: ["main"])

    @Test func vmwareAndVirtualBoxTakeTheGenericKernel() throws {
        let appliance = try ApplianceLoader().load(Self.description)
        for platform in [Platform.vmware, .virtualbox] {
            let request = try PackageRequest(appliance: appliance, hostSources: [Self.someArchive], platform: platform)
            #expect(request.packages.contains("linux-image-amd64"), "\(platform)")
            #expect(!request.packages.contains("linux-image-cloud-amd64"), "\(platform)")
        }
        let vmware = try PackageRequest(appliance: appliance, hostSources: [Self.someArchive], platform: .vmware)
        #expect(vmware.packages.contains("open-vm-tools"))
        for (platform, package) in [
            (Platform.hyperv, "hyperv-daemons"), (.ec2, "cloud-init"), (.gce, "cloud-init"),
        ] {
            let request = try PackageRequest(appliance: appliance, hostSources: [Self.someArchive], platform: platform)
            #expect(request.packages.contains(package), "\(platform)")
            #expect(request.packages.contains("linux-image-cloud-amd64"), "\(platform) keeps the cloud kernel")
        }
        // Without a platform, nothing changes.
        let plain = try PackageRequest(appliance: appliance, hostSources: [Self.someArchive])
        #expect(plain.packages.contains("linux-image-cloud-amd64") && !plain.packages.contains("open-vm-tools"))
        // The builder guest keeps its own (cloud) kernel whatever the target's platform.
        #expect(vmware.builderPackages == plain.builderPackages)
    }

    @Test func thePlatformsPostListRunsAfterBase() throws {
        var appliance = try ApplianceLoader().load(Self.description)
        appliance.post = PostCommands(base: ["echo base"], platforms: [.vmware: ["echo vmware"], .gce: ["echo gce"]])
        #expect(appliance.forPlatform(.vmware).post.base == ["echo base", "echo vmware"])
        #expect(appliance.forPlatform(.hyperv).post.base == ["echo base"])
        #expect(appliance.forPlatform(nil).post.base == ["echo base"])
    }

    @Test func anOVAForVirtualBoxTakesItsProfile() {
        #expect(BuildOutput.ova().forPlatform("virtualbox") == .ova(.virtualbox))
        #expect(BuildOutput.ova().forPlatform("vmware") == .ova(.vsphere))
        #expect(BuildOutput.disk(.vhdx).forPlatform("virtualbox") == .disk(.vhdx))
        #expect(PlatformPackages.defaultFormat(platform: "hyperv") == "vhdx")
        #expect(PlatformPackages.defaultFormat(platform: "ec2") == "raw")
    }

    static var archiveReachable: Bool {
        FileManager.default.isExecutableFile(atPath: (KilnProgram.path ?? "kiln"))
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/gpgv")
            && ((try? AptSources.load())?.isEmpty == false)
    }

    /// Real resolution against the host's apt sources, as `kiln lock` does for a build.
    @Test(.requires(archiveReachable, "the kiln binary, gpgv and the host's apt sources"))
    func lockForVMwareResolvesItsPackages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-platform-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lockPath = "\(dir)/vmware.lock"
        let (code, _, err) = try BuildFixture.kiln(["lock", Self.description, "--platform", "vmware", "-o", lockPath])
        try #require(code == 0, "kiln lock --platform vmware: \(err)")
        let lockfile = try Lockfile.read(lockPath)
        let names = Set(lockfile.packages.map(\.name))
        #expect(names.contains("open-vm-tools"))
        #expect(names.contains("linux-image-amd64"))
        #expect(!names.contains("linux-image-cloud-amd64"))
        #expect(lockfile.requested.contains("open-vm-tools"))

        let (bad, _, badErr) = try BuildFixture.kiln(["lock", Self.description, "--platform", "esx", "-o", lockPath])
        #expect(bad == 2, "an unknown platform is a usage error: \(badErr)")
    }
}
