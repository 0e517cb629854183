/// kiln's deploy agent: a kernel and initramfs, assembled from Debian packages like the builder guest,
/// that a lab host network-boots to write a disk image from `kiln serve` onto its own disk.
///
/// It takes its orders from the kernel command line that kiln's boot menu gives it:
/// `kiln.url=http://ADDR/deploy/TOKEN` (its plan, chunks and reports), `kiln.mac=MAC` (the interface
/// it booted from), and optionally `kiln.disk=/dev/...`. See `DeployAgentScripts` for what it does.
package enum DeployAgent {
    /// Debian packages the agent is made from (bookworm names). The generic kernel, not the cloud one:
    /// lab machines have e1000e, igb, ixgbe, r8169, AHCI and SAS controllers, which the cloud kernel lacks.
    /// The libraries the programs need come with them: the packages are resolved with their dependencies.
    package static let debianPackages = [
        "linux-image-amd64", "busybox-static", "fdisk", "util-linux", "e2fsprogs", "xfsprogs", "btrfs-progs",
        "curl",
    ]

    /// Programs that busybox lacks or does poorly.
    /// (busybox-static's wget crashes in glibc's static name lookup, even for a numeric address: curl.)
    package static let programs = ["curl", "sfdisk", "blkdiscard", "e2fsck", "resize2fs", "xfs_growfs", "btrfs"]

    /// Network cards, disk controllers and file systems of real lab hardware and of the hypervisors.
    package static let modules = [
        // network
        "virtio_pci", "virtio_net", "e1000", "e1000e", "igb", "ixgbe", "r8169", "vmxnet3",
        // disks
        "virtio_blk", "virtio_scsi", "sd_mod", "ahci", "ata_piix", "nvme", "vmw_pvscsi", "mpt3sas",
        "megaraid_sas", "hpsa", "aacraid",
        // file systems the agent grows or writes the host name into; libcrc32c (xfs, btrfs) finds its
        // checksum through the crypto API, which a soft dependency names, not `depends`
        "crc32c_generic", "ext4", "xfs", "btrfs",
    ]

    /// The recipe: the packages' local `.deb` files in, a builder-guest-shaped recipe out.
    package static func recipe(packages: [String], sourceDateEpoch: Int = 0) -> BuilderGuestRecipe {
        BuilderGuestRecipe(
            packages: packages, programs: programs, modules: modules, files: [],
            // 44 MB of programs, libraries and modules: zstd makes it a third of that to send over TFTP,
            // and the kernel unpacks it faster than it would read the difference from the network.
            compression: "zstd",
            sourceDateEpoch: sourceDateEpoch, initScript: DeployAgentScripts.initScript,
            scripts: ["kiln/udhcpc.script": DeployAgentScripts.dhcpScript])
    }
}
