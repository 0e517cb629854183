import Appliance
import BuildVM
import KilnSupport

/// What a file system type or an encrypted partition needs beyond ext4 and vfat, which every build
/// has: the builder guest's mkfs or cryptsetup program, its package and kernel modules, and the
/// target's own tools (fsck helpers, and the initramfs hooks that find and unlock the root file system
/// at boot).
struct FilesystemTools: Sendable {
    var builderPackages: [String]
    var programs: [String]
    var modules: [String]
    /// Other files the guest needs, by their path in a package.
    var files: [String] = []
    var targetPackages: [String]

    static func needed(by partitions: [Partition], architecture: Architecture = .x86_64) -> FilesystemTools {
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
        let encrypted = partitions.filter { $0.passphrase != nil }
        if !encrypted.isEmpty {
            // LUKS2 containers made in the guest (its libraries follow from the package's dependencies);
            // AF_ALG lets cryptsetup use the kernel's ciphers for the key slots.
            // cryptsetup's argon2 threads end through pthread_exit, for which glibc loads libgcc_s at
            // run time: no program names it as a library it needs.
            tools.builderPackages += ["cryptsetup-bin", "libgcc-s1"]
            tools.programs.append("cryptsetup")
            tools.files.append("lib/\(architecture.multiarchTriplet)/libgcc_s.so.1")
            tools.modules += ["dm_crypt", "ecb", "xts", "algif_skcipher", "algif_hash"]
            tools.targetPackages.append("cryptsetup")
            if encrypted.contains(where: { DiskLayout.unlockedByInitramfs.contains($0.mountPoint) }) {
                tools.targetPackages.append("cryptsetup-initramfs")
            }
        }
        return tools
    }

    /// The builder guest for a description: the standard one plus these tools and `extraPrograms`.
    func recipe(
        packages: [String], extraPrograms: [String] = [], sourceDateEpoch: Int, architecture: Architecture = .x86_64
    ) -> BuilderGuestRecipe {
        BuilderGuestRecipe(
            packages: packages, programs: BuilderGuestRecipe.standardPrograms + programs + extraPrograms,
            modules: BuilderGuestRecipe.standardModules + modules, files: BuilderGuestRecipe.standardFiles + files,
            sourceDateEpoch: sourceDateEpoch, architecture: architecture)
    }
}
