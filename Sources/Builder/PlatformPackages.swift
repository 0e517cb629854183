import DiskImage
import Packages

/// What `kiln build --platform` adds to a Debian target, from DiskImage's table. (Kept apart from
/// the files that import Appliance, whose `Platform` has the same name.)
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
