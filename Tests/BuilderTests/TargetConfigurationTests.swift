import Appliance
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// The configuration overlay the guest unpacks over the target, read back with GNU tar.
@Suite(.requires(FileManager.default.isExecutableFile(atPath: "/usr/bin/tar"), "GNU tar"))
struct TargetConfigurationTests {
    @Test func filesFromPathsAndURLsLandInTheirDirectories() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-overlay-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let local = "\(dir)/local.conf"
        try "from a path\n".write(toFile: local, atomically: true, encoding: .utf8)
        let cached = "\(dir)/cached-download"
        try "from a URL\n".write(toFile: cached, atomically: true, encoding: .utf8)
        let url = "http://files.example/motd/banner.txt?version=2"

        var appliance = Appliance(name: "overlay", os: OperatingSystem(name: .debian, version: "12"))
        appliance.files = [
            FileGroup(target: "/etc/kiln-test", sources: [.local(local, destination: "conf.d/local.conf")]),
            FileGroup(target: "/usr/share/banner", sources: [.url(url)]),
        ]
        var job = InstallJob(
            appliance: appliance, layout: try DiskLayout(hardware: appliance.hardware, seed: "overlay"),
            root: TargetRoot(packages: []), rootTar: "\(dir)/root.tar", aptSources: nil, sourceDateEpoch: 1_700_000_000)
        job.remoteFiles = [url: cached]
        _ = try job.guestJob(workDirectory: dir)

        func tar(_ arguments: String...) async throws -> String {
            let (ended, output) = try await Subprocess.output(["/usr/bin/tar"] + arguments)
            #expect(ended == .exited(0), "tar \(arguments): \(output)")
            return output
        }
        #expect(try await tar("-xOf", "\(dir)/overlay.tar", "etc/kiln-test/conf.d/local.conf") == "from a path\n")
        #expect(try await tar("-xOf", "\(dir)/overlay.tar", "usr/share/banner/banner.txt") == "from a URL\n")

        // A URL the lockfile did not pin is an error, not a missing file in the image.
        job.remoteFiles = [:]
        #expect(throws: BuilderError.self) { try job.guestJob(workDirectory: dir) }
    }

    /// The directories a warm build's guest sends from below other file systems' mounts: each mount
    /// point, named on the file system that holds it.
    @Test func nestedMountPointsNameTheirParentFileSystem() throws {
        var appliance = Appliance(name: "nested", os: OperatingSystem(name: .debian, version: "12"))
        appliance.hardware = Hardware(
            partitions: [
                Partition(mountPoint: "/", size: Size(mebibytes: 2048), type: .ext4),
                Partition(mountPoint: "/boot", size: Size(mebibytes: 512), type: .ext4),
                Partition(mountPoint: "/var/lib", size: Size(mebibytes: 512), type: .ext4),
                Partition(mountPoint: "swap", size: Size(mebibytes: 64), type: .swap),
            ], firmware: .hybrid)
        let layout = try DiskLayout(hardware: appliance.hardware, seed: "nested")
        let job = InstallJob(
            appliance: appliance, layout: layout, root: TargetRoot(packages: []), rootTar: "/nonexistent",
            aptSources: nil, sourceDateEpoch: 0)
        let number = { (role: String) in (layout.slots.firstIndex { $0.role == role } ?? -1) + 1 }
        #expect(
            job.nestedMountPoints.split(separator: "\n").sorted()
                == [
                    "\(number("/")) ./boot", "\(number("/")) ./var/lib", "\(number("/boot")) ./efi",
                ].sorted())
    }
}
