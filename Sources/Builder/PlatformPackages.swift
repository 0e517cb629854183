import DiskImage
import KilnSupport
import Packages

/// What each platform's guest needs in a Debian target.
extension Platform {
    /// Packages the guest needs on this platform, by package family.
    func guestPackages(debian: Bool) -> [String] {
        switch self {
        case .vmware: return ["open-vm-tools"]
        // The generic kernel's vboxguest, vboxsf and vboxvideo drivers are what a VirtualBox guest needs;
        // Debian ships the guest utilities in contrib, which a description can add with its repos.
        case .virtualbox: return []
        case .hyperv: return ["hyperv-daemons"]
        case .ec2, .gce: return ["cloud-init"]
        }
    }

    /// Whether the platform's emulated hardware needs Debian's generic kernel: the cloud kernel (6.1)
    /// has no AHCI, e1000, LSI Logic SCSI or vmwgfx, though it has vmw_pvscsi and vmxnet3. (Hyper-V,
    /// EC2 and GCE devices, and PIIX IDE, are in the cloud kernel.)
    var needsGenericKernel: Bool { self == .vmware || self == .virtualbox }
}

/// What `kiln build --platform` adds to a Debian target.
package enum PlatformPackages {
    /// The image's packages for the platform named `platform`: its guest packages added, and the cloud
    /// kernel swapped for the generic one where the platform's emulated devices need it.
    static func adjust(_ packages: [String], platform name: String, architecture: String = "amd64") -> [String] {
        guard let platform = Platform(rawValue: name) else { return packages }
        var names = packages
        if platform.needsGenericKernel {
            let cloud = BuiltInPackages.cloudKernel(architecture: architecture)
            names = names.map { $0 == cloud ? BuiltInPackages.genericKernel(architecture: architecture) : $0 }
        }
        return names + platform.guestPackages(debian: true)
    }

    /// The `kiln build --format` a platform's build writes when none is given.
    package static func defaultFormat(platform name: String) -> String {
        Platform(rawValue: name)?.exportFormat ?? "qcow2"
    }

    /// The OVF flavour for an OVA built for the platform named `platform`.
    static func ovfProfile(platform name: String?) -> OVFDescriptor.Profile {
        name.flatMap(Platform.init(rawValue:))?.ovfProfile ?? .vsphere
    }
}
