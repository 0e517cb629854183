import Appliance
import BuildVM
import Foundation
import KilnArchive
import KilnSupport

/// Everything the builder guest needs to install one description: the fixed `InstallScript`, and
/// the description's particulars as data files beside it.
///
/// Values are never spliced into shell code: the guest's loops read plain whitespace-free fields
/// (numbers, UUIDs, file system names, mount points kiln validated), and the few values the target's
/// `configure.sh` passes to programs (names, hashes, groups) are single-quoted with `ShellQuote`.
package struct InstallJob: Sendable {
    /// What the guest does about the configured base (`BaseCache`).
    package enum Base: Sendable, Equatable {
        /// Unpack and configure the packages, and keep nothing.
        case configure
        /// Unpack and configure the packages, and write the configured tree as a tar to the output
        /// disk (reported with a `base` event giving its size).
        case configureAndSave
        /// Make the target from this cached base tar; nothing is configured again.
        case reuse(String)

        /// The base tar the target is made from.
        var tar: String? {
            if case .reuse(let tar) = self { return tar }
            return nil
        }

        var setting: String {
            switch self {
            case .configure: "none"
            case .configureAndSave: "store"
            case .reuse: "use"
            }
        }
    }

    package var appliance: Appliance
    package var layout: DiskLayout
    package var root: TargetRoot
    /// The uncompressed tar of the unpacked packages (`TargetRoot.write`); unused when `base` is `.reuse`.
    package var rootTar: String
    /// `deb822` text for `/etc/apt/sources.list.d/kiln.sources` in the target.
    package var aptSources: String?
    package var sourceDateEpoch: Int64
    /// dpkg's name for the target's architecture.
    package var architecture: String { appliance.hardware.arch.debianName }
    /// The cached copy of each file the description names by URL.
    package var remoteFiles: [String: String] = [:]
    package var base = Base.configure
    /// The initramfs last made on this base, which the guest copies instead of running
    /// update-initramfs when this description gives the same inputs digest (`InitramfsInputs`).
    package var cachedInitramfs: BaseCache.Initramfs?
    /// The base's initramfs hook scripts (`InitramfsInputs.hookTexts`), which the inputs digest needs.
    package var baseHooks: [String]?
    /// The partitions (1-based) whose file systems kiln wrote before the guest started
    /// (`BaseFileSystems`), from the cached base or, when the guest is to save the base, from the
    /// unpacked packages: the guest mounts them as they are, the tar stays home, and the guest sends
    /// back what changed over the base (`ChangedTree`).
    package var prewritten: [Int] = []
    /// With `.configureAndSave`: the guest stops once the base is saved (the build goes on from it
    /// in a second run). A guest that cannot save it goes on to the end.
    package var stopsAfterBase = false
    /// The description's files (`TargetConfiguration`) are in the prewritten file systems already:
    /// the guest does not unpack them.
    package var overlaid = false
    /// The host makes the accounts, services and the time zone's link (`HostConfiguration`); the
    /// guest's configuration script only makes the locale.
    package var configuresOnHost = false

    package init(
        appliance: Appliance, layout: DiskLayout, root: TargetRoot, rootTar: String, aptSources: String?,
        sourceDateEpoch: Int64
    ) {
        self.appliance = appliance
        self.layout = layout
        self.root = root
        self.rootTar = rootTar
        self.aptSources = aptSources
        self.sourceDateEpoch = sourceDateEpoch
    }

    /// The digest of what this description adds that the initramfs could be made from, once the
    /// overlay tar is written; nil without the base's hooks.
    package func initramfsInputs(overlay: String) throws(BuilderError) -> String? {
        guard let baseHooks else { return nil }
        return try InitramfsInputs.digest(overlay: overlay, appliance: appliance, hooks: baseHooks)
    }

    /// Writes the overlay tar into `workDirectory` and returns the guest job.
    package func guestJob(workDirectory: String) throws(BuilderError) -> GuestJob {
        let overlay = "\(workDirectory)/overlay.tar"
        do {
            let writer = try ArchiveWriter(path: overlay, format: .gnuTar)
            try TargetConfiguration(job: self).write(to: writer)
            try writer.finish()
        } catch {
            throw BuilderError("cannot write the target's configuration: \(error)")
        }

        var initramfs: BaseCache.Initramfs?
        if case .reuse = base, let cachedInitramfs, try initramfsInputs(overlay: overlay) == cachedInitramfs.inputs {
            initramfs = cachedInitramfs
        }
        var files: [GuestJob.File] = [
            .init(
                path: "settings.sh",
                source: .bytes(Array(settings(initramfs: initramfs == nil ? "make" : "cached").utf8))),
            .init(path: "filesystems", source: .bytes(Array(filesystems.utf8))),
            .init(path: "mounts", source: .bytes(Array(mounts.utf8))),
            .init(path: "nested", source: .bytes(Array(nestedMountPoints.utf8))),
            .init(path: "uuids", source: .bytes(Array(uuids.utf8))),
            .init(path: "crypt", source: .bytes(Array(encrypted.utf8))),
            .init(path: "preinst-order", source: .bytes(Array(preinstOrder.utf8))),
            .init(path: "initramfs-hold", source: .bytes(Array(InstallScript.initramfsHold.utf8)), permissions: 0o755),
            .init(path: "overlay.tar", source: .hostFile(overlay)),
        ]
        // Each passphrase exactly as typed at boot (no newline: cryptsetup reads a key file whole).
        for (number, passphrase) in passphrases {
            files.append(.init(path: "keys/\(number)", source: .bytes(Array(passphrase.utf8)), permissions: 0o600))
        }
        if case .reuse(let tar) = base {
            if prewritten.isEmpty { files.append(.init(path: "base.tar", source: .hostFile(tar), extent: true)) }
            if let initramfs {
                files.append(.init(path: "initramfs.tar", source: .hostFile(initramfs.tar), extent: true))
            }
        } else if prewritten.isEmpty {
            files.append(.init(path: "root.tar", source: .hostFile(rootTar), extent: true))
        }
        let post = appliance.post.base
        var names: [String] = []
        for (index, command) in post.enumerated() {
            let name = String(format: "%03d", index + 1)
            names.append(name)
            files.append(.init(path: "post/\(name)", source: .bytes(Array((command + "\n").utf8))))
        }
        files.append(.init(path: "post.list", source: .bytes(Array(names.map { $0 + "\n" }.joined().utf8))))
        if let grub = GrubConfiguration.make(for: self, commandLine: TargetConfiguration(job: self).kernelCommandLine) {
            files.append(.init(path: "grub.cfg", source: .bytes(Array(grub.text.utf8))))
            files.append(.init(path: "kernels", source: .bytes(Array(grub.kernelList.utf8))))
        }
        return GuestJob(script: InstallScript.text, files: files)
    }

    /// Shell assignments of numbers and fixed words only; `initramfs` is `cached` or `make`.
    func settings(initramfs: String) -> String {
        """
        SOURCE_DATE_EPOCH=\(sourceDateEpoch)
        PACKAGE_COUNT=\(root.packages.count)
        FIRMWARE=\(appliance.hardware.firmware.rawValue)
        ARCH=\(architecture)
        BASE=\(base.setting)
        PREWRITTEN="\(prewritten.map(String.init).joined(separator: " "))"
        STOP_AFTER_BASE=\(stopsAfterBase ? 1 : 0)
        OVERLAID=\(overlaid ? 1 : 0)
        INITRAMFS=\(initramfs)

        """
    }

    /// `NUMBER FS ID LABEL` per partition with a file system.
    var filesystems: String {
        layout.slots.enumerated().compactMap { index, slot -> String? in
            guard let fs = slot.filesystem, let id = slot.filesystemID else { return nil }
            return "\(index + 1) \(fs.rawValue) \(id) \(slot.label)\n"
        }.joined()
    }

    /// `NUMBER FS MOUNTPOINT`, parents first.
    var mounts: String {
        layout.mountedSlots.compactMap { slot -> String? in
            guard let fs = slot.filesystem, fs != .swap, let index = layout.slots.firstIndex(of: slot) else {
                return nil
            }
            let mountPoint = slot.role == "esp" ? "/boot/efi" : slot.role
            return "\(index + 1) \(fs.rawValue) \(mountPoint == "/" ? "/" : mountPoint)\n"
        }.joined()
    }

    /// `NUMBER ./PATH` per mount point that is a directory of partition NUMBER's file system:
    /// `2 ./boot/efi` when the ESP is mounted on the root's `/boot/efi`.
    var nestedMountPoints: String {
        let mounted = layout.slots.enumerated().compactMap { index, slot -> (number: Int, path: String)? in
            guard let fs = slot.filesystem, fs != .swap else { return nil }
            let mountPoint = slot.role == "esp" ? "/boot/efi" : slot.role
            return (index + 1, mountPoint.split(separator: "/").joined(separator: "/"))
        }
        return mounted.compactMap { child -> String? in
            guard !child.path.isEmpty else { return nil }
            let parent = mounted.filter { $0.path.isEmpty || child.path.hasPrefix($0.path + "/") }
                .max { $0.path.count < $1.path.count }
            guard let parent else { return nil }
            let inside = parent.path.isEmpty ? child.path : String(child.path.dropFirst(parent.path.count + 1))
            return "\(parent.number) ./\(inside)\n"
        }.joined()
    }

    /// `NUMBER NAME LUKS-UUID` per encrypted partition: its container's UUID and device-mapper name.
    var encrypted: String {
        layout.slots.enumerated().compactMap { index, slot -> String? in
            guard let id = slot.encryptionID else { return nil }
            return "\(index + 1) \(slot.mapperName) \(id)\n"
        }.joined()
    }

    /// The passphrase of each encrypted partition, by partition number.
    var passphrases: [(Int, String)] {
        layout.slots.enumerated().compactMap { index, slot -> (Int, String)? in
            guard slot.encryptionID != nil,
                let passphrase = appliance.hardware.partitions.first(where: { $0.mountPoint == slot.role })?.passphrase
            else { return nil }
            return (index + 1, passphrase)
        }
    }

    /// `NUMBER FS UUID` for the by-uuid links grub-mkconfig looks for.
    var uuids: String {
        layout.slots.enumerated().compactMap { index, slot -> String? in
            guard let fs = slot.filesystem, let id = slot.filesystemUUID else { return nil }
            return "\(index + 1) \(fs.rawValue) \(id)\n"
        }.joined()
    }

    /// Packages with a preinst, base-passwd first (it makes /etc/passwd, which others need), then in
    /// unpack order.
    var preinstOrder: String {
        let keys = root.packages.filter(\.hasPreinst).map(\.databaseKey)
        let first = keys.filter { $0 == "base-passwd" || $0 == "base-files" }.sorted()
        return (first + keys.filter { !first.contains($0) }).map { $0 + "\n" }.joined()
    }
}
