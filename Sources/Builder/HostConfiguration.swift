import Appliance
import Foundation
import KilnArchive
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The description's accounts and services, made on the host over a configured base as the target's
/// shadow tools and `systemctl` make them in the guest (`TargetAccounts`, `UnitInstaller`), and
/// laid over the base with the description's files (`TreeOverlay`): the guest then runs none of it.
///
/// It reads what those tools read from the base and from the files kiln writes (`overlay`, which
/// holds kiln's own units): the account databases, `login.defs`, `/etc/default/useradd`, the
/// skeleton folder, and the unit folders, which it unpacks into a scratch folder for
/// `UnitInstaller` (contents and links only; nothing there needs an owner).
struct HostConfiguration {
    let appliance: Appliance
    let sourceDateEpoch: Int64

    /// Whether a path is one the tools read.
    static func isRead(_ path: String) -> Bool {
        let absolute = "/" + path
        if TargetAccounts.inputs.contains(absolute) { return true }
        if path == "lib" || path == "etc/init.d" || path.hasPrefix("etc/init.d/") { return true }
        for folder in ["etc/skel", "etc/systemd", "usr/lib/systemd", "lib/systemd", "usr/local/lib/systemd"]
        where path == folder || path.hasPrefix(folder + "/") {
            return true
        }
        return false
    }

    /// Adds the accounts and services to `laid`; nil when a service can only be enabled by the
    /// target's own tools (a SysV script without a unit), and the guest makes them all.
    func configure(
        base: String, overlay: String, scratch: String, into laid: inout TreeOverlay
    ) throws(BuilderError) -> Bool {
        var files: [String: (ArchiveEntry, [UInt8])] = [:]
        var paths: Set<String> = []
        for archive in [base, overlay] {
            do {
                let reader = try ArchiveReader(path: archive)
                while let entry = try reader.next() {
                    paths.insert(entry.path)
                    if Self.isRead(entry.path) {
                        files[entry.path] = (entry, entry.kind == .file ? try reader.readData() : [])
                    } else {
                        try reader.skipData()
                    }
                }
            } catch {
                throw BuilderError("cannot read \(archive): \(error)")
            }
        }

        // Services first: a SysV script leaves them, and the accounts with them, to the guest.
        try? FileManager.default.removeItem(atPath: scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for (path, (entry, data)) in files.sorted(by: { ChangedTree.precedes($0.key, $1.key) }) {
            let target = "\(scratch)/\(path)"
            try? FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            switch entry.kind {
            case .directory: mkdir(target, 0o755)
            case .symlink(let link):
                unlink(target)
                symlink(link, target)
            case .file, .hardlink:
                guard FileManager.default.createFile(atPath: target, contents: Data(data)) else {
                    throw BuilderError("cannot write \(target)")
                }
            default: continue
            }
        }
        // bookworm's systemd (252) writes links into /lib, trixie's (257) into /usr/lib.
        var units = UnitInstaller(root: scratch, rules: appliance.os.codename == "bookworm" ? .systemd252 : .systemd257)
        var outcomes: [UnitInstaller.Outcome] = []
        for (name, enable) in [("kiln-ssh-host-keys.service", true)] + appliance.services.enable.map({ ($0, true) })
            + appliance.services.disable.map({ ($0, false) })
        {
            let outcome = enable ? try units.enable(name) : try units.disable(name)
            // systemctl also runs systemd-sysv-install for a unit with a SysV script: `update-rc.d
            // NAME defaults`, whose rc.d links the package's own postinst made in the base already
            // (`ssh`). A script without them, or one to disable, is left to the guest's tools.
            if let script = outcome.sysvScript {
                let name = (script as NSString).lastPathComponent
                // etc/rc2.d/S01ssh
                let linked = paths.contains { path in
                    let link = (path as NSString).lastPathComponent
                    return path.hasPrefix("etc/rc") && link.hasPrefix("S") && link.dropFirst(3) == name
                }
                if !enable || !linked { return false }
            }
            outcomes.append(outcome)
        }
        for outcome in outcomes {
            for folder in outcome.createdDirectories {
                laid.add(entry(folder, .directory, mode: 0o755))
            }
            for link in outcome.createdLinks {
                laid.add(entry(link.path, .symlink(target: link.target), mode: 0o777))
            }
            for path in outcome.removedLinks + outcome.removedDirectories {
                laid.remove(String(path.drop { $0 == "/" }))
            }
        }

        // Accounts: root's password, then each user as the configure script would add them.
        var accounts = TargetAccounts(
            files: Dictionary(
                uniqueKeysWithValues: TargetAccounts.inputs.compactMap { path -> (String, TargetFile)? in
                    guard let (entry, data) = files[String(path.dropFirst())], entry.kind == .file else { return nil }
                    return (
                        path,
                        TargetFile(bytes: data, mode: entry.permissions, uid: UInt32(entry.uid), gid: UInt32(entry.gid))
                    )
                }),
            skeleton: files.keys.filter { $0.hasPrefix("etc/skel/") }.sorted(by: ChangedTree.precedes)
                .compactMap { path in
                    guard let (entry, _) = files[path] else { return nil }
                    let kind: AccountEdits.Copy.Kind
                    switch entry.kind {
                    case .directory: kind = .directory
                    case .file: kind = .file
                    case .symlink(let target): kind = .symlink(target)
                    default: return nil
                    }
                    return TargetAccounts.SkeletonEntry(
                        path: String(path.dropFirst("etc/skel/".count)), kind: kind, mode: entry.permissions)
                },
            sourceDateEpoch: sourceDateEpoch, pathExists: { [paths] in paths.contains(String($0.drop { $0 == "/" })) })
        if let hash = appliance.os.passwordHash {
            try accounts.setPasswordHash(hash, of: "root")
        } else {
            try accounts.lockPassword(of: "root")
        }
        for (index, user) in appliance.users.enumerated() {
            let uid = UInt32(TargetConfiguration.firstUID + index)
            try accounts.addUser(user.name, uid: uid, groups: user.groups, shell: "/bin/bash")
            if let hash = user.passwordHash { try accounts.setPasswordHash(hash, of: user.name) }
            if !user.sshKeys.isEmpty {
                accounts.authorizeKeys(
                    Array((user.sshKeys.joined(separator: "\n") + "\n").utf8), home: "/home/\(user.name)", uid: uid,
                    gid: uid)
            }
        }
        let edits = accounts.edits
        for directory in edits.directories {
            laid.add(entry(directory.path, .directory, mode: directory.mode, uid: directory.uid, gid: directory.gid))
        }
        for copy in edits.copies {
            switch copy.kind {
            case .directory:
                laid.add(entry(copy.destination, .directory, mode: copy.mode, uid: copy.uid, gid: copy.gid))
            case .symlink(let target):
                laid.add(entry(copy.destination, .symlink(target: target), mode: 0o777, uid: copy.uid, gid: copy.gid))
            case .file:
                let data = files[String(copy.source.dropFirst())]?.1 ?? []
                laid.add(
                    entry(copy.destination, .file, mode: copy.mode, uid: copy.uid, gid: copy.gid, size: data.count),
                    source: .bytes(data))
            }
        }
        for file in edits.files {
            let contents = file.contents
            laid.add(
                entry(
                    file.path, .file, mode: contents.mode, uid: contents.uid, gid: contents.gid,
                    size: contents.bytes.count),
                source: .bytes(contents.bytes))
        }
        return true
    }

    private func entry(
        _ path: String, _ kind: ArchiveEntry.Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, size: Int = 0
    ) -> ArchiveEntry {
        ArchiveEntry(
            path: String(path.drop { $0 == "/" }), kind: kind, permissions: mode, uid: Int64(uid), gid: Int64(gid),
            modificationTime: sourceDateEpoch, size: Int64(size))
    }
}
