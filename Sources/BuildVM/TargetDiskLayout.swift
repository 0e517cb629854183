import Crypto
import Foundation

/// The target disk's partitions and file system identities, decided on the host so that the same
/// inputs give the same disk: GPT with a BIOS boot partition (for GRUB on BIOS), an EFI system
/// partition, and an ext4 root filling the rest.
public struct TargetDiskLayout: Sendable, Equatable {
    /// Bytes; a whole number of MiB.
    public var diskSize: Int64
    public var biosBootMiB: Int64 = 1
    public var espMiB: Int64 = 64
    /// GPT disk GUID ("label-id").
    public var diskGUID: String
    public var biosBootPartitionUUID: String
    public var espPartitionUUID: String
    public var rootPartitionUUID: String
    /// The root ext4 file system's UUID (what `/etc/fstab` names); also its directory hash seed.
    public var rootFilesystemUUID: String
    /// The ESP's FAT volume id, 8 hex digits ("1A2B3C4D"; fstab writes it "1A2B-3C4D").
    public var espVolumeID: String
    /// Seconds since the epoch that mke2fs and mkfs.fat stamp (SOURCE_DATE_EPOCH).
    public var timestamp: Int

    /// GPT partition type GUIDs (UEFI 2.10, 5.3.3; the BIOS boot GUID is GRUB's).
    static let biosBootType = "21686148-6449-6E6F-744E-656564454649"
    static let espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    static let linuxRootX86_64Type = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"

    /// Every identifier derived from `seed` (a description's name and lockfile hash, say).
    public init(diskSize: Int64, seed: String, timestamp: Int) {
        self.diskSize = diskSize
        self.timestamp = timestamp
        diskGUID = Self.uuid(seed, "disk")
        biosBootPartitionUUID = Self.uuid(seed, "bios-boot")
        espPartitionUUID = Self.uuid(seed, "esp")
        rootPartitionUUID = Self.uuid(seed, "root")
        rootFilesystemUUID = Self.uuid(seed, "root-fs")
        espVolumeID = Self.digest(seed, "esp-fs").prefix(4).map { String(format: "%02X", $0) }.joined()
    }

    /// A version 4 form UUID (random bits taken from SHA-256) that depends only on its inputs.
    static func uuid(_ seed: String, _ role: String) -> String {
        var bytes = Array(digest(seed, role).prefix(16))
        bytes[6] = bytes[6] & 0x0F | 0x40  // version 4 (RFC 9562, 5.4)
        bytes[8] = bytes[8] & 0x3F | 0x80  // variant 10
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(
                hex[
                    hex.index(
                        hex.startIndex, offsetBy: range.lowerBound)..<hex.index(
                            hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    private static func digest(_ seed: String, _ role: String) -> [UInt8] {
        Array(SHA256.hash(data: Data("kiln-disk\0\(seed)\0\(role)".utf8)))
    }

    /// sfdisk(8) input: 512-byte sectors, everything aligned to 1 MiB.
    var sfdiskScript: String {
        let mib: Int64 = 2048
        let biosStart = mib
        let espStart = biosStart + biosBootMiB * mib
        let rootStart = espStart + espMiB * mib
        return """
            label: gpt
            label-id: \(diskGUID)
            unit: sectors
            first-lba: 2048
            start=\(biosStart), size=\(biosBootMiB * mib), type=\(Self.biosBootType), uuid=\(biosBootPartitionUUID), name="bios-boot"
            start=\(espStart), size=\(espMiB * mib), type=\(Self.espType), uuid=\(espPartitionUUID), name="esp"
            start=\(rootStart), type=\(Self.linuxRootX86_64Type), uuid=\(rootPartitionUUID), name="root"

            """
    }

    /// Shell for the guest's last step: everything written and both file systems unmounted.
    public static let unmountScript = "sync\numount /target/boot/efi\numount /target\n"

    /// Shell for the guest: partition `$KILN_TARGET`, make the file systems, mount the root at
    /// `/target` and the ESP at `/target/boot/efi`, and, given `rootTarExtent` (the name of an
    /// extent file of the job: a tar the host made), unpack it into `/target` straight from the disk. Reports each step with `kiln-event`.
    public func guestScript(rootTarExtent: String?) -> String {
        var lines = [
            "set -e",
            "kiln-event step 'partitioning'",
            // sfdisk tells the kernel of the new partitions; devtmpfs makes their nodes (no udev).
            "/kiln/bin/sfdisk --quiet \"$KILN_TARGET\" <<'KILN_SFDISK'",
            sfdiskScript + "KILN_SFDISK",
            "part() { for p in \"${KILN_TARGET}$1\" \"${KILN_TARGET}p$1\"; do [ -b \"$p\" ] && { echo \"$p\"; return; }; done; return 1; }",
            "tries=0; until part 3 >/dev/null || [ $tries -gt 100 ]; do usleep 20000; tries=$((tries+1)); done",
            "ESP=$(part 2); ROOT=$(part 3)",
            "kiln-event step 'making file systems'",
            "E2FSPROGS_FAKE_TIME=\(timestamp) /kiln/bin/mke2fs -q -F -t ext4 -U \(rootFilesystemUUID) -E hash_seed=\(rootFilesystemUUID),lazy_itable_init=1,lazy_journal_init=1 -L root \"$ROOT\"",
            "SOURCE_DATE_EPOCH=\(timestamp) /kiln/bin/mkfs.fat -F 32 -i \(espVolumeID) -n ESP \"$ESP\" >/dev/null",
            "mount -t ext4 -o noinit_itable \"$ROOT\" /target",
            "mkdir -p /target/boot/efi",
            "mount -t vfat \"$ESP\" /target/boot/efi",
        ]
        if let rootTarExtent {
            lines += [
                "kiln-event step 'unpacking the root file system'",
                "kiln-extent '\(rootTarExtent)' | tar -x -f - -C /target",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
