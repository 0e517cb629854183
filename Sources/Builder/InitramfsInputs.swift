import Appliance
import Crypto
import Foundation
import KilnArchive
import Packages

/// What a description adds to a configured base that `mkinitramfs` could read, as one digest: a
/// base's initramfs is made again only when it changes (`BaseCache.initramfs`). The packages are
/// the base's key; what is hashed here is the description's part, as the host lays it over the base
/// (`TargetConfiguration`, `TreeOverlay`) and as the guest's configuration changes it:
///
/// - every file and symlink it writes under `/etc/initramfs-tools`, and under any other folder of
///   `/etc` that an initramfs hook, the hook functions or `mkinitramfs` itself names
///   (`/etc/modprobe.d`, `/etc/default`, `/etc/crypttab`, `/etc/udev`, ...: their texts are read
///   from the base, and from the description's own hooks): a host name, accounts, sudo rules, SSH
///   or service settings do not make a new initramfs;
/// - the path, kind, mode, owner and size of everything it writes outside `/etc`, but under
///   `/boot`, `/home`, `/root`, `/srv`, `/var`, `/tmp`, `/run`, `/proc`, `/sys`, `/dev` (where no
///   hook reads) and kiln's own `/kiln`;
/// - the time zone and the locale (the guest makes the `/etc/localtime` link and the locale archive).
///
/// `post` commands run after the initramfs is made, so they do not count.
struct InitramfsInputs {
    /// The top-level folders whose contents no initramfs hook reads.
    static let unread: Set<String> = ["boot", "home", "root", "srv", "var", "tmp", "run", "proc", "sys", "dev", "kiln"]

    /// The texts of the scripts that decide what goes into an initramfs.
    static func isHookScript(_ path: String) -> Bool {
        path == "usr/sbin/mkinitramfs" || path == "usr/share/initramfs-tools/hook-functions"
            || path.hasPrefix("usr/share/initramfs-tools/hooks/") || path.hasPrefix("etc/initramfs-tools/hooks/")
    }

    /// Reads the hook scripts of the base tar at `base` (skipping everything else's data).
    static func hookTexts(inBase base: String) throws(BuilderError) -> [String] {
        do {
            let reader = try ArchiveReader(path: base)
            var texts: [String] = []
            while let entry = try reader.next() {
                if entry.kind == .file, isHookScript(entry.path) {
                    texts.append(String(decoding: try reader.readData(), as: UTF8.self))
                } else {
                    try reader.skipData()
                }
            }
            return texts
        } catch {
            throw BuilderError("cannot read the initramfs hooks of \(base): \(error)")
        }
    }

    /// The digest of the description's inputs: `overlay` is the tar of the files kiln writes into
    /// the target (`TargetConfiguration`), `hooks` the base's hook texts.
    static func digest(overlay: String, appliance: Appliance, hooks: [String]) throws(BuilderError) -> String {
        var lines: [String] = []
        let entries: [(ArchiveEntry, [UInt8])]
        do {
            entries = try ArchiveReader.entries(of: overlay)
        } catch {
            throw BuilderError("cannot read \(overlay): \(error)")
        }
        // Hooks the description adds name files too.
        let texts = hooks + entries.filter { isHookScript($0.0.path) }.map { String(decoding: $0.1, as: UTF8.self) }
        // "/etc/default" in a hook names every file of /etc/default: counting too much costs time only.
        func named(_ name: String) -> Bool { texts.contains { $0.contains("/etc/\(name)") } }
        for (entry, data) in entries {
            let parts = entry.path.split(separator: "/", maxSplits: 2).map(String.init)
            guard let top = parts.first else { continue }
            if top == "etc" {
                guard parts.count > 1, parts[1] == "initramfs-tools" || named(parts[1]) else { continue }
                switch entry.kind {
                case .file: lines.append("file \(entry.path) \(SHA256.hash(data: data).hex)")
                case .symlink(let target): lines.append("link \(entry.path) \(target)")
                default: continue
                }
            } else if !unread.contains(top) {
                lines.append(
                    "entry \(entry.path) \(entry.kind) \(String(entry.permissions, radix: 8)) \(entry.uid) \(entry.gid) \(entry.size)"
                )
            }
        }
        lines.append("timezone \(appliance.os.timezone)")
        lines.append("locale \(appliance.os.locale)")
        return SHA256.hash(data: Array((["kiln initramfs inputs 3"] + lines.sorted()).joined(separator: "\n").utf8)).hex
    }
}
