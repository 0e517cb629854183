import Appliance
import BuildVM

/// What a file system type needs beyond ext4 and vfat, which every build has: the builder guest's
/// mkfs program, its package and kernel module, and the target's own tools (fsck helpers and the
/// initramfs hooks that find the root file system at boot).
struct FilesystemTools: Sendable {
    var builderPackages: [String]
    var programs: [String]
    var modules: [String]
    var targetPackages: [String]

    static func needed(by partitions: [Partition]) -> FilesystemTools {
        var tools = FilesystemTools(builderPackages: [], programs: [], modules: [], targetPackages: [])
        for type in Set(partitions.map(\.type)).sorted(by: { $0.rawValue < $1.rawValue }) {
            switch type {
            case .xfs:
                tools.builderPackages += ["xfsprogs", "libinih1", "liburcu8"]
                tools.programs.append("mkfs.xfs")
                tools.modules.append("xfs")
                tools.targetPackages.append("xfsprogs")
            case .btrfs:
                tools.builderPackages += ["btrfs-progs", "liblzo2-2", "libzstd1", "zlib1g", "libudev1"]
                tools.programs.append("mkfs.btrfs")
                tools.modules.append("btrfs")
                tools.targetPackages.append("btrfs-progs")
            case .ext4, .ext3, .vfat, .swap:
                break
            }
        }
        return tools
    }

    /// The builder guest for a description: the standard one plus these tools and `extraPrograms`.
    func recipe(packages: [String], extraPrograms: [String] = [], sourceDateEpoch: Int) -> BuilderGuestRecipe {
        BuilderGuestRecipe(
            packages: packages, programs: BuilderGuestRecipe.standardPrograms + programs + extraPrograms,
            modules: BuilderGuestRecipe.standardModules + modules, sourceDateEpoch: sourceDateEpoch)
    }
}
