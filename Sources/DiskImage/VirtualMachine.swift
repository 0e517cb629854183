import KilnSupport

/// The machine an exported image describes (OVF, libvirt, Vagrant): a small typed value that the
/// build pipeline fills from the appliance description.
package struct VirtualMachine: Sendable, Equatable {
    package enum OSFamily: String, Sendable, CaseIterable {
        case debian, ubuntu, fedora, rhel, centos, rocky, almalinux, linux
    }

    package var name: String
    package var summary: String
    package var version: String
    package var cpus: Int
    package var memoryMiB: Int
    package var firmware: Firmware
    package var osFamily: OSFamily
    package var osVersion: String
    package var arch: Architecture

    package init(
        name: String, summary: String = "", version: String = "1", cpus: Int = 1, memoryMiB: Int = 1024,
        firmware: Firmware = .bios, osFamily: OSFamily = .linux, osVersion: String = "", arch: Architecture = .x86_64
    ) {
        self.arch = arch
        self.name = name
        self.summary = summary
        self.version = version
        self.cpus = cpus
        self.memoryMiB = memoryMiB
        self.firmware = firmware
        self.osFamily = osFamily
        self.osVersion = osVersion
    }
}

/// A disk file that goes into an export, already in its final format.
package struct ExportDisk: Sendable, Equatable {
    /// Where the file is on the host.
    package var path: String
    /// The name inside the package (OVA member, box member).
    package var fileName: String
    /// Guest-visible bytes.
    package var capacity: UInt64

    package init(path: String, fileName: String, capacity: UInt64) {
        self.path = path
        self.fileName = fileName
        self.capacity = capacity
    }
}

/// How each platform's machine is exported.
extension Platform {
    /// The OVF flavour an OVA for this platform takes.
    package var ovfProfile: OVFDescriptor.Profile { self == .virtualbox ? .virtualbox : .vsphere }

    /// The disk format and export each platform takes.
    package var exportFormat: String {
        switch self {
        case .vmware: return "ova"
        case .virtualbox: return "ova"
        case .hyperv: return "vhdx"
        case .ec2: return "raw"
        case .gce: return "gce"
        }
    }
}
