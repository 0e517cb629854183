import Appliance
import KilnSupport
import Packages

/// `/boot/grub/grub.cfg`, written by kiln from what it knows of the image instead of by
/// `update-grub` in the builder guest (which probes every device and file system, and takes 8-10 s
/// under TCG): the kernels its packages install, the file system holding `/boot`, the root's UUID,
/// the serial console and the kernel arguments. The menu is the one `update-grub` makes from the
/// `/etc/default/grub` kiln writes: the newest kernel first, an advanced submenu with every kernel
/// and its recovery entry, and the firmware's settings on UEFI; the serial console where the
/// description has one. The target's own `update-grub` (run by kernel upgrades) writes it anew from
/// the same defaults.
///
/// The guest checks the kernels against `/boot` before it takes this file; when they differ (or
/// `make` is nil: encrypted partitions, whose unlocking `update-grub` knows), it runs `update-grub`.
struct GrubConfiguration {
    /// The kernel releases (`6.1.0-28-amd64`), newest first.
    var kernels: [String]
    /// The UUID and type of the file system that holds `/boot`, and whether it is `/boot` itself
    /// (then the kernels sit at its top) or the root.
    var bootUUID: String
    var bootFilesystem: FilesystemType
    var bootIsOwnPartition: Bool
    var rootUUID: String
    /// The kernel arguments after `root=... ro`.
    var commandLine: String
    var console: SerialConsole?
    var arch: Architecture
    /// Whether the target's GRUB (2.12 and later) has `fwsetup --is-supported`, which its
    /// `update-grub` then asks before offering the firmware's settings. GRUB 2.06 (Debian 12) has
    /// not: there the same line would restart the machine into the firmware's setup at every boot.
    var asksFirmwareSetup = false

    static let distributor = "Debian GNU/Linux"

    /// The configuration for this job, or nil where `update-grub` should write it.
    static func make(for job: InstallJob, commandLine: String) -> GrubConfiguration? {
        let layout = job.layout
        guard !layout.slots.contains(where: { $0.encryptionID != nil }),
            let root = layout.slots.first(where: { $0.role == "/" }), let rootUUID = root.filesystemUUID
        else { return nil }
        let boot = layout.slots.first { $0.role == "/boot" } ?? root
        guard let bootUUID = boot.filesystemUUID, let bootFilesystem = boot.filesystem,
            [.ext4, .ext3, .xfs, .btrfs].contains(bootFilesystem)
        else { return nil }
        let kernels = kernelReleases(job.root.packages.map(\.name))
        guard !kernels.isEmpty else { return nil }
        var configuration = GrubConfiguration(
            kernels: kernels, bootUUID: bootUUID, bootFilesystem: bootFilesystem,
            bootIsOwnPartition: boot.role == "/boot", rootUUID: rootUUID, commandLine: commandLine,
            console: job.appliance.console, arch: job.appliance.hardware.arch)
        if let grub = job.root.packages.first(where: { $0.name == "grub-common" }),
            let version = try? DebianVersion(grub.version), let first = try? DebianVersion("2.12")
        {
            configuration.asksFirmwareSetup = version >= first
        }
        return configuration
    }

    /// The kernel releases that packages named `linux-image-RELEASE` install as
    /// `/boot/vmlinuz-RELEASE`, newest first; the metapackages (`linux-image-amd64`), whose names
    /// do not go on with a digit, install none.
    static func kernelReleases(_ packages: [String]) -> [String] {
        let prefix = "linux-image-"
        let releases = packages.compactMap { name -> String? in
            guard name.hasPrefix(prefix), !name.hasSuffix("-dbg") else { return nil }
            var release = name.dropFirst(prefix.count)
            guard release.first?.isNumber == true else { return nil }
            if release.hasSuffix("-unsigned") { release = release.dropLast("-unsigned".count) }
            return String(release)
        }
        return Set(releases).sorted { newer($0, $1) }
    }

    /// Debian's version order on the releases' leading version (`6.1.0-28`), then by name.
    private static func newer(_ a: String, _ b: String) -> Bool {
        if let left = try? DebianVersion(a), let right = try? DebianVersion(b), left != right { return left > right }
        return a > b
    }

    /// The kernel files' directory as GRUB sees it on the file system it searches for.
    private var directory: String { bootIsOwnPartition ? "" : "/boot" }

    private var module: String {
        switch bootFilesystem {
        case .xfs: "xfs"
        case .btrfs: "btrfs"
        default: "ext2"
        }
    }

    /// `/job/kernels`: the releases, one per line, in `sort`'s order, for the guest's comparison.
    var kernelList: String {
        kernels.sorted().map { $0 + "\n" }.joined()  // ASCII names: Swift's order is sort's in C
    }

    var text: String {
        var lines = [
            "# written by kiln (update-grub writes it anew from /etc/default/grub)",
            "if [ -s $prefix/grubenv ]; then",
            "  load_env",
            "fi",
            "if [ \"${next_entry}\" ]; then",
            "  set default=\"${next_entry}\"",
            "  set next_entry=",
            "  save_env next_entry",
            "else",
            "  set default=\"0\"",
            "fi",
        ]
        if let console {
            if SerialConsole.grubUsesFirmwareConsole(on: arch) {
                lines += ["terminal_input console", "terminal_output console"]
            } else {
                lines += [
                    console.grubSerialCommand,
                    "terminal_input console serial",
                    "terminal_output console serial",
                ]
            }
        }
        lines += [
            "if [ \"${recordfail}\" = 1 ]; then",
            "  set timeout=30",
            "else",
            "  set timeout_style=menu",
            "  set timeout=1",
            "fi",
        ]
        let name = Self.distributor
        if let newest = kernels.first {
            lines += entry(name, id: "gnulinux-simple-\(rootUUID)", release: newest, recovery: false, indent: "")
        }
        // the titles and ids update-grub gives, which GRUB_DEFAULT and grub-reboot name entries by
        lines.append("submenu 'Advanced options for \(name)' --id 'gnulinux-advanced-\(rootUUID)' {")
        for release in kernels {
            lines += entry(
                "\(name), with Linux \(release)", id: "gnulinux-\(release)-advanced-\(rootUUID)", release: release,
                recovery: false, indent: "  ")
            lines += entry(
                "\(name), with Linux \(release) (recovery mode)", id: "gnulinux-\(release)-recovery-\(rootUUID)",
                release: release, recovery: true, indent: "  ")
        }
        lines.append("}")
        if asksFirmwareSetup {
            lines += [
                "if [ \"$grub_platform\" = efi ]; then",
                "  fwsetup --is-supported",
                "  if [ \"$?\" = 0 ]; then",
                "    menuentry 'UEFI Firmware Settings' --id uefi-firmware {",
                "      fwsetup",
                "    }",
                "  fi",
                "fi",
            ]
        } else {
            lines += [
                "if [ \"$grub_platform\" = efi ]; then",
                "  menuentry 'UEFI Firmware Settings' --id uefi-firmware {",
                "    fwsetup",
                "  }",
                "fi",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func entry(_ title: String, id: String, release: String, recovery: Bool, indent: String) -> [String] {
        var arguments = "root=UUID=\(rootUUID) ro"
        if recovery { arguments += " single" }
        if !commandLine.isEmpty { arguments += " \(commandLine)" }
        let body = [
            "insmod all_video",
            "insmod gzio",
            "insmod part_gpt",
            "insmod \(module)",
            "search --no-floppy --fs-uuid --set=root \(bootUUID)",
            "echo 'Loading Linux \(release) ...'",
            "linux \(directory)/vmlinuz-\(release) \(arguments)",
            "echo 'Loading initial ramdisk ...'",
            "initrd \(directory)/initrd.img-\(release)",
        ]
        return ["\(indent)menuentry '\(title)' --class debian --class gnu-linux --class os --id '\(id)' {"]
            + body.map { "\(indent)  \($0)" } + ["\(indent)}"]
    }
}

extension SerialConsole {
    /// GRUB for arm64-efi draws on the firmware's console, which AAVMF (and arm64 clouds' UEFI)
    /// already puts on the serial port; GRUB's own serial driver is for PCs' UARTs.
    static func grubUsesFirmwareConsole(on arch: Architecture) -> Bool { arch == .aarch64 }

    /// GRUB's `serial` command for this console: `ttyS1` is unit 1; other devices (`hvc0`) are
    /// not GRUB's to drive, so GRUB uses the first UART.
    var grubSerialCommand: String {
        let unit = device.hasPrefix("ttyS") ? String(device.dropFirst(4)) : "0"
        return "serial --unit=\(unit) --speed=\(speed)"
    }
}
