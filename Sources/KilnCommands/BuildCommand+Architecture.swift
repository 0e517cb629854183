import Appliance
import BuildVM
import Builder
import KilnSupport

extension BuildCommand {
    /// Platforms whose hypervisors run x86_64 guests only, as kiln targets them.
    static let x86OnlyPlatforms: Set<Platform> = [.vmware, .virtualbox, .hyperv]

    /// Refuses what an arm64 image cannot be: a VMware, VirtualBox or Hyper-V build, a VDI
    /// (VirtualBox's) or a Vagrant box (whose Vagrantfile describes a PC); and, for a build, a host
    /// without the emulator for the description's architecture (`checkEmulator`).
    static func checkArchitecture(
        _ appliance: Appliance, platform: Platform?, formats: [BuildOutput], checkEmulator: Bool = false
    ) throws(CommandFailure) {
        let arch = appliance.hardware.arch
        if arch == .aarch64 {
            if let platform, x86OnlyPlatforms.contains(platform) {
                throw CommandFailure(
                    "--platform \(platform.rawValue) builds for x86_64 hypervisors; \(appliance.name) is aarch64",
                    hint: "arm64 images build for ec2 and gce, or with no --platform (KVM/QEMU, libvirt)")
            }
            let refused = formats.filter { $0 == .disk(.vdi) || $0 == .vagrant }.map(\.label)
            if !refused.isEmpty {
                throw CommandFailure(
                    "--format \(refused.joined(separator: ",")) is for x86_64 machines (VirtualBox's disk, a Vagrant box "
                        + "for a PC); \(appliance.name) is aarch64",
                    hint: "arm64 images are written as qcow2, raw, vmdk, vhd, vhdx, ova, gce and libvirt")
            }
        }
        if checkEmulator {
            do {
                try arch.requireQEMU()
            } catch {
                throw CommandFailure("\(appliance.name) is built inside an \(arch.rawValue) guest: \(error.message)")
            }
        }
    }
}
