import KilnSupport

/// What goes into the builder guest: the `.deb` files it is made from, and which of their programs,
/// kernel modules and files the initramfs holds.
package struct BuilderGuestRecipe: Sendable, Hashable, Codable {
    /// Local `.deb` files: a kernel image package, `busybox-static`, the programs' packages and the
    /// packages of every library they need.
    package var packages: [String]
    /// Programs by name, looked up in `sbin`, `usr/sbin`, `bin`, `usr/bin` of the packages; each is
    /// copied with the shared libraries it needs (its ELF `DT_NEEDED` closure).
    package var programs: [String]
    /// Kernel modules by name, loaded in this order after their dependencies (from `.modinfo`).
    /// Names the kernel has built in are skipped.
    package var modules: [String]
    /// Other files copied when a package has them (configuration the programs read).
    package var files: [String]
    package var compression: String
    /// Modification time of every initramfs entry (SOURCE_DATE_EPOCH).
    package var sourceDateEpoch: Int
    /// `/init`; nil for the builder guest's own (`GuestScripts.initScript`). The deploy agent has its own.
    package var initScript: String?
    /// More executable scripts, by path in the initramfs.
    package var scripts: [String: String]
    /// The machine the guest runs on, which its packages are built for.
    package var architecture: Architecture

    package init(
        packages: [String],
        programs: [String] = BuilderGuestRecipe.standardPrograms,
        modules: [String] = BuilderGuestRecipe.standardModules,
        files: [String] = BuilderGuestRecipe.standardFiles,
        compression: String = "none",
        sourceDateEpoch: Int = 0,
        initScript: String? = nil,
        scripts: [String: String] = [:],
        architecture: Architecture = .x86_64
    ) {
        self.architecture = architecture
        self.initScript = initScript
        self.scripts = scripts
        self.packages = packages
        self.programs = programs
        self.modules = modules
        self.files = files
        self.compression = compression
        self.sourceDateEpoch = sourceDateEpoch
    }

    /// The tools a disk build needs that busybox lacks or does poorly. The boot loader and dpkg are
    /// not here: they run from the target itself. (GNU `tar`, for the configured base, is added by
    /// the build when the lockfile has it: see `Builder.BaseCache`.)
    package static let standardPrograms = ["sfdisk", "mke2fs", "tune2fs", "e2fsck", "mkfs.fat", "mkfs.vfat"]

    /// virtio disks (PCI), and vfat for the ESP (code page 437, ASCII names: Debian's defaults);
    /// ext4 is built into Debian's kernels. (The same names serve arm64's cloud kernel, where
    /// `ModuleSet` skips those it has built in.)
    package static let standardModules = ["virtio_pci", "virtio_blk", "vfat", "nls_cp437", "nls_ascii", "ext4"]

    package static let standardFiles = ["etc/mke2fs.conf"]

    /// Debian packages that hold everything above, for amd64 (bookworm names). The kernel package is
    /// named by its metapackage; a resolver follows it to `linux-image-<version>-cloud-amd64`.
    package static let debianPackages = debianPackages(for: .x86_64)

    /// The same for a guest of `architecture`: the same names but the kernel's, which Debian names
    /// by architecture (`linux-image-cloud-arm64`).
    package static func debianPackages(for architecture: Architecture) -> [String] {
        [
            "linux-image-cloud-\(architecture.debianName)", "busybox-static", "fdisk", "e2fsprogs", "dosfstools", "tar",
            "libc6", "libfdisk1", "libsmartcols1", "libblkid1", "libuuid1", "libext2fs2", "libcom-err2",
            "libreadline8", "libtinfo6",
        ]
    }
}
