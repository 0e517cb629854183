import Appliance
import Crypto

/// Where each partition of the target disk goes: GPT with a BIOS boot partition and an ESP as the
/// firmware needs them, then the description's partitions in order. Sizes in MiB, the first
/// partition at 1 MiB; identifiers derived from a seed so that the same inputs give the same disk.
package struct DiskLayout: Sendable, Equatable {
    package struct Slot: Sendable, Equatable {
        /// `bios`, `esp`, or the description's mount point (`/`, `/var`, `swap`).
        package var role: String
        package var startMiB: Int64
        package var sizeMiB: Int64
        /// GPT partition type GUID.
        package var typeGUID: String
        /// GPT partition GUID.
        package var partitionGUID: String
        /// The file system's UUID (a FAT volume id, 8 hex digits, for the ESP); nil for BIOS boot.
        package var filesystemID: String?
        package var filesystem: FilesystemType?
        package var mountOptions: String?
        /// The GPT partition name.
        package var label: String
        /// The LUKS2 header's UUID when the partition is encrypted; its file system is then inside
        /// the container, opened as `/dev/mapper/\(mapperName)`.
        package var encryptionID: String?

        /// The device-mapper name of an encrypted partition, as Debian's installer names one: `root_crypt`.
        package var mapperName: String { "\(label)_crypt" }

        /// The file system's UUID as blkid and /dev/disk/by-uuid spell it (`809B-9115` for FAT).
        package var filesystemUUID: String? {
            guard let id = filesystemID else { return nil }
            return filesystem == .vfat ? "\(id.prefix(4))-\(id.suffix(4))" : id
        }
    }

    package var diskGUID: String
    package var sizeMiB: Int64
    package var slots: [Slot]

    static let espSizeMiB: Int64 = 255
    /// The mount points that must be open before the initramfs hands over to init.
    static let unlockedByInitramfs: Set<String> = ["/", "/usr"]
    /// What cryptsetup's LUKS2 header (its default 16 MiB) takes from an encrypted partition.
    static let luksHeaderMiB: Int64 = 16
    /// The plain /boot added for an encrypted /: room for two kernels and their initramfs images.
    static let bootSizeMiB: Int64 = 512
    /// Room at the start (alignment, primary GPT) and at the end (backup GPT).
    static let leadMiB: Int64 = 1
    static let tailMiB: Int64 = 1

    package init(hardware: Hardware, seed: String) throws(BuilderError) {
        var slots: [Slot] = []
        var next = Self.leadMiB
        func add(
            _ role: String, _ size: Int64, _ type: String, _ fs: FilesystemType?, _ options: String?, _ label: String,
            encrypted: Bool = false
        ) {
            let id = Self.uuid(seed, "partition:\(role)")
            let fsID: String? =
                switch fs {
                case nil: nil
                case .vfat?: String(Self.uuid(seed, "fs:\(role)").replacingAll("-", "").prefix(8)).uppercased()
                default: Self.uuid(seed, "fs:\(role)")
                }
            slots.append(
                Slot(
                    role: role, startMiB: next, sizeMiB: size, typeGUID: type, partitionGUID: id,
                    filesystemID: fsID, filesystem: fs, mountOptions: options, label: label,
                    encryptionID: encrypted ? Self.uuid(seed, "luks:\(role)") : nil))
            next += size
        }
        if hardware.firmware != .uefi { add("bios", 1, Self.biosBootType, nil, nil, "bios") }
        if hardware.firmware != .bios { add("esp", Self.espSizeMiB, Self.espType, .vfat, "umask=0077", "esp") }
        let partitions = hardware.partitions
        guard let root = partitions.first(where: { $0.mountPoint == "/" }) else {
            throw BuilderError("the description has no / partition")
        }
        for partition in partitions {
            // mkfs.xfs (xfsprogs 5.19 and later) refuses file systems under 300 MiB; a LUKS2 header
            // takes the first 16 MiB of an encrypted partition.
            let header: Int64 = partition.passphrase == nil ? 0 : Self.luksHeaderMiB
            if partition.type == .xfs && partition.size.mebibytes < 300 + header && !partition.grow {
                let need =
                    header == 0 ? "300 MiB" : "\(300 + header) MiB (300 MiB and the LUKS2 header's \(header) MiB)"
                throw BuilderError(
                    "\(partition.mountPoint): an xfs file system needs at least \(need), not \(partition.size)")
            }
        }
        // GRUB reads the kernel and initramfs from a /boot it can open without a passphrase; the
        // initramfs then unlocks /. As Debian's installer does, an encrypted / gets a plain /boot.
        if let boot = partitions.first(where: { $0.mountPoint.hasPrefix("/boot") && $0.passphrase != nil }) {
            throw BuilderError(
                "\(boot.mountPoint): GRUB reads the kernel from /boot before anything is unlocked, so it cannot be encrypted"
            )
        }
        if root.passphrase != nil {
            if !partitions.contains(where: { $0.mountPoint == "/boot" }) {
                add("/boot", Self.bootSizeMiB, Self.linuxType, .ext4, nil, "boot")
            }
        }
        let fixed =
            Self.leadMiB + slots.reduce(0) { $0 + $1.sizeMiB } + partitions.reduce(0) { $0 + $1.size.mebibytes }
            + Self.tailMiB
        let disk = hardware.diskSize?.mebibytes ?? fixed
        guard disk >= fixed else {
            throw BuilderError(
                "disk_size \(Size(mebibytes: disk)) is smaller than the partitions need (\(Size(mebibytes: fixed)))")
        }
        for (index, partition) in partitions.enumerated() {
            var size = partition.size.mebibytes
            if partition.grow && index == partitions.count - 1 { size += disk - fixed }
            let type =
                partition.isSwap
                ? Self.swapType
                : partition.mountPoint == "/" && hardware.arch == .aarch64
                    ? Self.arm64RootType : (Self.mountTypes[partition.mountPoint] ?? Self.linuxType)
            let label =
                partition.isSwap
                ? "swap"
                : partition.mountPoint == "/"
                    ? "root"
                    : String(partition.mountPoint.dropFirst()).replacingAll("/", "-")
            add(
                partition.mountPoint, size, type, partition.type, partition.options, label,
                encrypted: partition.passphrase != nil)
        }
        diskGUID = Self.uuid(seed, "disk")
        sizeMiB = disk
        self.slots = slots
    }

    /// sfdisk's script for the table (sfdisk(8), "Input format").
    package var sfdiskScript: String {
        var lines = ["label: gpt", "label-id: \(diskGUID)", "unit: sectors", "first-lba: 2048", ""]
        for slot in slots {
            lines.append(
                "start=\(slot.startMiB * 2048), size=\(slot.sizeMiB * 2048), type=\(slot.typeGUID), uuid=\(slot.partitionGUID), name=\(slot.label)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `/etc/fstab`, by UUID, mount points in order of depth.
    package var fstab: String {
        var lines = ["# written by kiln: <file system> <mount point> <type> <options> <dump> <pass>"]
        for slot in mountedSlots {
            guard let fs = slot.filesystem, let id = slot.filesystemUUID else { continue }
            let mountPoint = slot.role == "esp" ? "/boot/efi" : slot.role
            if fs == .swap {
                lines.append("UUID=\(id) none swap sw 0 0")
                continue
            }
            let options = slot.mountOptions ?? ([.ext4, .ext3].contains(fs) ? "errors=remount-ro" : "defaults")
            // xfs and btrfs check themselves when mounted; their fsck helpers do nothing at boot.
            let pass = [.xfs, .btrfs].contains(fs) ? 0 : mountPoint == "/" ? 1 : 2
            lines.append("UUID=\(id) \(mountPoint) \(fs.rawValue) \(options) 0 \(pass)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `/etc/crypttab`: each encrypted partition by its LUKS UUID, the passphrase asked for at boot. The
    /// partitions the initramfs must open (`/`, `/usr`) say so with `initramfs`.
    package var crypttab: String? {
        let encrypted = slots.filter { $0.encryptionID != nil }
        guard !encrypted.isEmpty else { return nil }
        var lines = ["# written by kiln: <target name> <source device> <key file> <options>"]
        for slot in encrypted {
            guard let id = slot.encryptionID else { continue }
            var options = ["luks"]
            if Self.unlockedByInitramfs.contains(slot.role) { options.append("initramfs") }
            lines.append("\(slot.mapperName) UUID=\(id) none \(options.joined(separator: ","))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Partitions with a file system, parents before children (`/` first, `/boot/efi` after `/boot`).
    package var mountedSlots: [Slot] {
        slots.filter { $0.filesystem != nil }.sorted { a, b in
            func depth(_ slot: Slot) -> Int {
                if slot.role == "swap" { return 100 }
                let path = slot.role == "esp" ? "/boot/efi" : slot.role
                return path == "/" ? 0 : path.split(separator: "/").count
            }
            return (depth(a), a.startMiB) < (depth(b), b.startMiB)
        }
    }

    /// A version-4-shaped UUID from SHA-256 of the seed and a purpose.
    static func uuid(_ seed: String, _ purpose: String) -> String {
        var bytes = Array(SHA256.hash(data: Array("kiln:\(seed):\(purpose)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { String($0, radix: 16).leftPadded(2) }.joined()
        let parts = [
            hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4),
            hex.dropFirst(20),
        ]
        return parts.joined(separator: "-")
    }

    // GPT partition types (UEFI spec 2.10 §5.3.3; the Discoverable Partitions Specification).
    static let biosBootType = "21686148-6449-6E6F-744E-656564454649"
    static let espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    static let linuxType = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    static let swapType = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
    /// The root partition's type names its architecture: x86-64's is in `mountTypes`.
    static let arm64RootType = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
    static let mountTypes = [
        "/": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "/var": "4D21B016-B534-45C2-A9FB-5C16E091FD2D",
        "/home": "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
        "/srv": "3B8F8425-20E0-4F3B-907F-1A25A76F98E8",
        "/var/tmp": "7EC6F557-3BC5-4ACA-B293-16EF5DF639D1",
    ]
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }

    func replacingAll(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
