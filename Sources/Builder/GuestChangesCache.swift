import Crypto
import Ext4
import Foundation
import KilnArchive
import KilnSupport
import Packages
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// What a builder guest changed over the tree kiln wrote for it, kept so that a later build whose
/// guest would do the same work needs no guest at all.
///
/// A build from a cached base with nothing of its own to execute (no `post` command) runs only
/// what follows from its key: the guest's configuration script, the cached or new initramfs,
/// `grub-install`, kiln's GRUB configuration and the clean-up. Once such a run is done, this keeps,
/// per ext4 file system, the tar of the entries it changed and the paths of kiln's tree it removed
/// (`ChangedTree`'s inputs, made independent of the tree), and the disk's bytes outside those file
/// systems (the boot code in the MBR, the BIOS boot partition, the ESP). The next build with the same
/// key lays them over its own tree on the host, natively: the same bytes as the guest would give.
///
/// The key (`key(...)`) holds everything the guest reads: the base, the install script, the disk's
/// layout and identifiers, the job's files (GRUB's configuration, the kernels, the configuration
/// script with the accounts and services), the initramfs inputs (`InitramfsInputs`) and every file
/// of the description that a step of the guest reads. What the guest never reads (the host name,
/// network and sudo settings, SSH and application configuration, files under `/srv`, `/opt`,
/// `/usr/local`) is left out: an edit of those is a build without QEMU.
struct GuestChangesCache {
    static let keep = 4

    let directory: String

    init(cacheDirectory: String) { directory = "\(cacheDirectory)/changes" }

    /// The description's files that no step of a guest without `post` commands reads: the host's
    /// name and network, sudo rules, SSH and application settings, APT sources, and files under
    /// `/srv`, `/opt`, `/root` and `/usr/local` (but its systemd units).
    static func isInert(_ path: String, configuredOnHost: Bool) -> Bool {
        // Accounts, homes and services the host made: the guest reads none of them.
        if configuredOnHost {
            if TargetAccounts.inputs.contains("/" + path) || path.hasPrefix("home/") || path == "home" { return true }
            for folder in ["etc/systemd", "usr/lib/systemd", "lib/systemd", "usr/local/lib/systemd"]
            where path.hasPrefix(folder + "/") {
                return true
            }
        }
        let inertFiles: Set<String> = [
            "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/network/interfaces", "etc/motd", "etc/issue",
            "etc/issue.net",
        ]
        if inertFiles.contains(path) { return true }
        for folder in ["etc/sudoers.d/", "etc/apt/", "etc/network/interfaces.d/", "srv/", "opt/", "root/"]
        where path.hasPrefix(folder) {
            return true
        }
        if path.hasPrefix("etc/ssh/") { return !path.hasPrefix("etc/ssh/ssh_host_") }
        if path.hasPrefix("usr/local/") { return !path.hasPrefix("usr/local/lib/systemd/") }
        // Application settings in /etc: a folder of its own that none of the guest's steps reads.
        let read = [
            "etc/default", "etc/systemd", "etc/initramfs-tools", "etc/modprobe.d", "etc/modules", "etc/kernel",
            "etc/grub.d", "etc/skel", "etc/login.defs", "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow",
            "etc/subuid", "etc/subgid", "etc/locale", "etc/machine-id", "etc/fstab", "etc/crypttab", "etc/udev",
            "etc/console-setup", "etc/ld.so", "etc/dpkg", "etc/alternatives", "etc/init.d", "etc/rc",
            "etc/localtime", "etc/timezone", "etc/nsswitch.conf", "etc/pam", "etc/security", "etc/shells",
        ]
        if path.hasPrefix("etc/") && !path.dropFirst(4).isEmpty {
            return !read.contains { path == $0 || path.hasPrefix($0) }
        }
        return false
    }

    /// The key of a guest's run: `parts` are the texts it depends on (see `ImageBuild`), `overlay`
    /// the description's files, of which the inert ones do not count.
    static func key(parts: [String], overlay: String, configuredOnHost: Bool) throws(BuilderError) -> String {
        var hasher = SHA256()
        for part in ["kiln guest changes 1"] + parts {
            hasher.update(data: Data(SHA256.hash(data: Data(part.utf8)).hex.utf8))
        }
        do {
            var lines: [String] = []
            for (entry, data) in try ArchiveReader.entries(of: overlay) {
                guard !isInert(entry.path, configuredOnHost: configuredOnHost) else { continue }
                lines.append(
                    "\(entry.path) \(entry.kind) \(String(entry.permissions, radix: 8)) \(entry.uid) \(entry.gid) "
                        + SHA256.hash(data: data).hex)
            }
            hasher.update(data: Data(lines.sorted().joined(separator: "\n").utf8))
        } catch {
            throw BuilderError("cannot read \(overlay): \(error)")
        }
        return hasher.finalize().hex
    }

    /// The folder of a kept run, if there is one (and marks it used).
    func lookup(_ key: String) -> String? {
        let folder = "\(directory)/\(key)"
        guard access("\(folder)/regions.raw", R_OK) == 0 else { return nil }
        utimes(folder, nil)
        return folder
    }

    /// Keeps what the guest changed: for each file system of `fileSystems`, its changes' tar and
    /// path list on `fileSystemDisk` (`trees`), against `tree`, the tar kiln wrote them from; and
    /// the regions of `raw` (finished) outside them. A run that cannot be kept costs the next build
    /// its guest only: the caller warns.
    func store(
        key: String, raw: String, fileSystemDisk: String, trees: [Int: ReproducibleFileSystems.Tree],
        tree: String, fileSystems: BaseFileSystems
    ) throws(BuilderError) {
        let files = FileManager.default
        let temporary = "\(directory)/.\(key).kiln-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try files.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        } catch {
            throw BuilderError("cannot create \(temporary): \(error.localizedDescription)")
        }
        defer { try? files.removeItem(atPath: temporary) }
        let source: FileDescriptor
        do {
            source = try FileDescriptor.open(FilePath(fileSystemDisk), .readOnly, options: .closeOnExec)
        } catch {
            throw BuilderError("cannot open \(fileSystemDisk): \(error)")
        }
        defer { try? source.close() }
        let treePaths = try Self.paths(of: tree)
        for mount in fileSystems.mounts {
            guard case .changes(let listOffset, let listSize)? = trees[mount.number] else {
                throw BuilderError("the guest sent partition \(mount.number) whole, not as changes")
            }
            let start = mount.slot.startMiB << 20
            let region = DiskRegion(
                descriptor: source, path: fileSystemDisk, start: start, length: mount.slot.sizeMiB << 20)
            let list = try region.read(listOffset, Int(listSize))
            let kept = Set(ChangedTree(mountPath: mount.path, list: list).paths)
            let removed = fileSystems.paths(on: mount, of: treePaths).filter { !kept.contains($0) }
            guard
                FileManager.default.createFile(
                    atPath: "\(temporary)/removed-\(mount.number)",
                    contents: Data(removed.map { $0 + "\0" }.joined().utf8))
            else {
                throw BuilderError("cannot write \(temporary)/removed-\(mount.number)")
            }
            // The changes' tar: from the partition's start to the list (MiB-aligned after it).
            let output = FileManager.default.createFile(
                atPath: "\(temporary)/changes-\(mount.number).tar", contents: nil)
            guard output, let handle = FileHandle(forWritingAtPath: "\(temporary)/changes-\(mount.number).tar") else {
                throw BuilderError("cannot write \(temporary)")
            }
            defer { try? handle.close() }
            var at: Int64 = 0
            while at < listOffset {
                let count = Int(min(Int64(1 << 20), listOffset - at))
                let bytes = try region.read(at, count)
                do {
                    try handle.write(contentsOf: Data(bytes))
                } catch {
                    throw BuilderError("cannot write \(temporary): \(error.localizedDescription)")
                }
                at += Int64(count)
            }
        }
        // The disk outside kiln's ext4 file systems: boot code, BIOS boot partition, ESP.
        try Self.copyRegions(from: raw, to: "\(temporary)/regions.raw", layout: fileSystems.layout, create: true)
        let folder = "\(directory)/\(key)"
        try? files.removeItem(atPath: folder)
        guard rename(temporary, folder) == 0 else {
            throw BuilderError("cannot keep the guest's changes in \(folder): \(Errno(rawValue: errno))")
        }
        evict()
    }

    /// Writes the image into `raw` (with its partition table) from `tree` and the run kept in `folder`.
    func apply(
        _ folder: String, raw: String, tree: String, fileSystems: BaseFileSystems, sourceDateEpoch: Int64
    ) throws(BuilderError) {
        let treePaths = try Self.paths(of: tree)
        for mount in fileSystems.mounts {
            let changes = "\(folder)/changes-\(mount.number).tar"
            guard let removedData = FileManager.default.contents(atPath: "\(folder)/removed-\(mount.number)") else {
                throw BuilderError("\(folder) has no removed-\(mount.number)")
            }
            let removed = Set(removedData.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
            let paths =
                fileSystems.paths(on: mount, of: treePaths).filter { !removed.contains($0) }
                + (try Self.paths(of: changes))
            let changed = ChangedTree(mountPath: mount.path, paths: Array(Set(paths)))
            let writer = try ReproducibleFileSystems.ext4Writer(
                for: mount.slot, into: raw, sourceDateEpoch: sourceDateEpoch)
            do {
                try changed.write(
                    base: try ArchiveReader(path: tree), changes: try ArchiveReader(path: changes), into: writer)
                _ = try writer.finish()
            } catch {
                throw BuilderError("cannot write \(mount.slot.role)'s file system from the kept changes: \(error)")
            }
        }
        try Self.copyRegions(from: "\(folder)/regions.raw", to: raw, layout: fileSystems.layout, create: false)
    }

    /// Every path of the tar at `path`, in its order.
    static func paths(of path: String) throws(BuilderError) -> [String] {
        do {
            let reader = try ArchiveReader(path: path)
            var paths: [String] = []
            while let entry = try reader.next() {
                paths.append(entry.path)
                try reader.skipData()
            }
            return paths
        } catch {
            throw BuilderError("cannot read \(path): \(error)")
        }
    }

    /// Copies the MBR's boot code and the partitions without a file system of kiln's (BIOS boot,
    /// FAT) from `source` to the same places of `destination` (made as a sparse file of the same
    /// size when `create`).
    static func copyRegions(from source: String, to destination: String, layout: DiskLayout, create: Bool)
        throws(BuilderError)
    {
        if create { try ImageBuild.createSparse(destination, mib: layout.sizeMiB) }
        let input: FileDescriptor
        let output: FileDescriptor
        do {
            input = try FileDescriptor.open(FilePath(source), .readOnly, options: .closeOnExec)
            output = try FileDescriptor.open(FilePath(destination), .readWrite, options: .closeOnExec)
        } catch {
            throw BuilderError("cannot open \(source) or \(destination): \(error)")
        }
        defer {
            try? input.close()
            try? output.close()
        }
        let bootCode = try DiskRegion(descriptor: input, path: source, start: 0, length: 440).read(0, 440)
        try DiskRegion(descriptor: output, path: destination, start: 0, length: 440).write(bootCode, at: 0)
        for slot in layout.slots where slot.filesystem == nil || slot.filesystem == .vfat {
            let region = DiskRegion(
                descriptor: output, path: destination, start: slot.startMiB << 20, length: slot.sizeMiB << 20)
            try ReproducibleFileSystems.copySparse(from: input, path: source, into: region)
        }
    }

    /// Keeps the most recently used runs only.
    private func evict() {
        let files = FileManager.default
        guard let names = try? files.contentsOfDirectory(atPath: directory) else { return }
        let folders = names.filter { !$0.hasPrefix(".") }.map { name -> (String, Date) in
            let path = "\(directory)/\(name)"
            return (path, (try? files.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast)
        }
        for (path, _) in folders.sorted(by: { $0.1 > $1.1 }).dropFirst(Self.keep) {
            try? files.removeItem(atPath: path)
        }
    }
}
