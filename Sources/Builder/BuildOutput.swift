import Appliance
import DiskImage
import Foundation
import KilnSupport

/// One thing `kiln build --format` writes from the finished raw disk: a disk image in a format, or
/// a package for a platform (OVA for vSphere, a GCE tarball, a Vagrant box, a libvirt domain).
package enum BuildOutput: Sendable, Hashable {
    case disk(ImageFormat)
    /// An OVA in the platform's OVF flavour (vSphere unless built for VirtualBox).
    case ova(OVFDescriptor.Profile = .vsphere)
    case gce
    case vagrant
    /// A libvirt domain (`virsh define NAME.libvirt.xml`) that boots the build's qcow2 in the same
    /// directory, named by its absolute path; `kiln build` adds the qcow2 when it is not asked for.
    case libvirt

    /// `qcow2`, `raw`, `vmdk`, `vhd`, `vhdx`, `vdi`, `ova`, `gce`, `vagrant`, `libvirt`.
    package init?(name: String) {
        switch name {
        case "ova": self = .ova()
        case "gce": self = .gce
        case "vagrant": self = .vagrant
        case "libvirt": self = .libvirt
        default:
            guard let format = ImageFormat(rawValue: name) else { return nil }
            self = .disk(format)
        }
    }

    package static let names = ImageFormat.allCases.map(\.rawValue) + ["ova", "gce", "vagrant", "libvirt"]

    /// The file name it gets in the output directory.
    func fileName(for appliance: String) -> String {
        switch self {
        case .disk(let format): return "\(appliance).\(format.rawValue)"
        case .ova: return "\(appliance).ova"
        case .gce: return "\(appliance).gce.tar.gz"
        case .vagrant: return "\(appliance).box"
        case .libvirt: return "\(appliance).libvirt.xml"
        }
    }

    package var label: String {
        switch self {
        case .disk(let format): return format.rawValue
        case .ova: return "ova"
        case .gce: return "gce"
        case .vagrant: return "vagrant"
        case .libvirt: return "libvirt"
        }
    }

    /// Writes this output from the raw disk at `raw` into `directory`; returns its path. Every time
    /// the output records (VHD footers, archive members) is `sourceDateEpoch`.
    func write(
        raw: String, appliance: Appliance, directory: String, sourceDateEpoch: Int64, progress: ProgressSink
    ) throws(BuilderError) -> String {
        let timestamp = UInt64(clamping: sourceDateEpoch)
        let destination = "\(directory)/\(fileName(for: appliance.name))"
        do {
            let source = try DiskImage.open(raw, expecting: .raw)
            switch self {
            case .disk(let format):
                try ImageConverter.convert(
                    source, to: destination, options: ExportOptions(format: format, timestamp: timestamp),
                    progress: progress)
            case .ova(let profile):
                try Exporter.ova(
                    source, machine: Self.machine(appliance), profile: profile, to: destination, timestamp: timestamp,
                    progress: progress)
            case .gce:
                try Exporter.gce(source, to: destination, timestamp: timestamp, progress: progress)
            case .vagrant:
                try Exporter.vagrant(
                    source, machine: Self.machine(appliance), to: destination, timestamp: timestamp, progress: progress)
            case .libvirt:
                let disk = URL(
                    fileURLWithPath: "\(directory)/\(BuildOutput.disk(.qcow2).fileName(for: appliance.name))"
                )
                .standardizedFileURL.path
                let domain = LibvirtDomain(machine: Self.machine(appliance), diskPath: disk, diskFormat: .qcow2)
                try AtomicOutput.write(domain.xml, to: destination)
            }
        } catch {
            throw BuilderError("cannot write \(destination): \(error)")
        }
        return destination
    }

    /// The output for a platform's build: an OVA takes the platform's OVF flavour.
    package func forPlatform(_ name: String?) -> BuildOutput {
        if case .ova = self { return .ova(PlatformPackages.ovfProfile(platform: name)) }
        return self
    }

    /// What the OVF and the Vagrantfile say about the machine.
    static func machine(_ appliance: Appliance) -> VirtualMachine {
        VirtualMachine(
            name: appliance.name, summary: appliance.summary ?? "",
            version: "\(appliance.version).\(appliance.release)",
            cpus: appliance.hardware.cpus, memoryMiB: appliance.hardware.memory,
            firmware: appliance.hardware.firmware == .bios ? .bios : .uefi,
            osFamily: VirtualMachine.OSFamily(rawValue: appliance.os.name.rawValue) ?? .linux,
            osVersion: appliance.os.version, arch: appliance.hardware.arch)
    }
}
