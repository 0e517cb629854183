import DiskImage

/// What `kiln build --platform` adds to a Debian target, from DiskImage's table. (Kept apart from
/// the files that import Appliance, whose `Platform` has the same name.)
public enum PlatformPackages {
    static let cloudKernel = "linux-image-cloud-amd64"
    static let genericKernel = "linux-image-amd64"

    /// The image's packages for the platform named `platform`: its guest packages added, and the cloud
    /// kernel swapped for the generic one where the platform's emulated devices need it.
    static func adjust(_ packages: [String], platform name: String) -> [String] {
        guard let platform = Platform(rawValue: name) else { return packages }
        var names = packages
        if platform.needsGenericKernel {
            names = names.map { $0 == cloudKernel ? genericKernel : $0 }
        }
        return names + platform.guestPackages(debian: true)
    }

    /// The `kiln build --format` a platform's build writes when none is given.
    public static func defaultFormat(platform name: String) -> String {
        Platform(rawValue: name)?.exportFormat ?? "qcow2"
    }

    /// The OVF flavour for an OVA built for the platform named `platform`.
    static func ovfProfile(platform name: String?) -> OVFDescriptor.Profile {
        name.flatMap(Platform.init(rawValue:))?.ovfProfile ?? .vsphere
    }
}
