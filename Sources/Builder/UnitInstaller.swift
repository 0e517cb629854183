import Foundation

/// `systemctl enable NAME` and `systemctl disable NAME` done offline on a target tree, as
/// `systemctl --root=DIR` does them: the symbolic links under `/etc/systemd/system` from each unit's
/// `[Install]` section, kept in memory so that several calls act as the same commands in a row.
package struct UnitInstaller {
    /// What the systemd being imitated does differently between releases.
    package struct Rules: Sendable, Equatable {
        /// Where unit files are looked for, first match wins; a folder that is another one already
        /// listed (`/usr/lib/...` when `/lib` links to `usr/lib`) is dropped, as systemd drops it.
        package var searchPath: [String]
        /// Whether `UpheldBy=` in `[Install]` makes `.upholds/` links (systemd 254 and later).
        package var knowsUpheldBy: Bool

        /// Debian 12 (systemd 252, built with split /usr): `/lib/systemd/system` before `/usr/lib`, so link
        /// targets read `/lib/systemd/system/NAME` on a merged-/usr target.
        package static let systemd252 = Rules(
            searchPath: [
                "/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system",
                "/usr/lib/systemd/system",
            ], knowsUpheldBy: false)
        /// Debian 13 (systemd 257, /usr merged): not judged here, the host runs 252.
        package static let systemd257 = Rules(
            searchPath: ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system"],
            knowsUpheldBy: true)
    }

    /// What one `enable` or `disable` changed.
    package struct Outcome: Sendable, Equatable {
        /// Folders made for new links (0755, root's), parents first.
        package var createdDirectories: [String] = []
        /// New links in the order systemctl makes them.
        package var createdLinks: [Link] = []
        /// Links removed, sorted.
        package var removedLinks: [String] = []
        /// Folders left empty by the removals and removed with them, deepest first.
        package var removedDirectories: [String] = []
        /// What systemctl would say and still succeed (a unit without `[Install]`, a masked unit).
        package var notices: [String] = []
        /// A SysV script (`/etc/init.d/NAME`) that systemctl hands to `systemd-sysv-install`, which runs
        /// `update-rc.d`: only the guest can do that part.
        package var sysvScript: String?
        /// Whether the command must still run in the guest (for its SysV script).
        package var needsGuest: Bool { sysvScript != nil }
    }

    /// A symbolic link: its path in the target and what it points to, as `readlink` gives it.
    package struct Link: Sendable, Hashable {
        package var path: String
        package var target: String

        package init(path: String, target: String) {
            self.path = path
            self.target = target
        }
    }

    enum Entry: Equatable {
        case directory
        case file
        case link(String)
    }

    static let configFolder = "/etc/systemd/system"

    let root: String
    let rules: Rules
    /// The search path with folders that are the same as an earlier one dropped.
    let searchPath: [String]
    /// Everything under /etc/systemd/system, by absolute path in the target, as the calls so far left it.
    var entries: [String: Entry]

    /// Reads `/etc/systemd/system` of the tree whose root is `root`.
    package init(root: String, rules: Rules = .systemd252) {
        self.root = root
        self.rules = rules
        var seen: [(UInt64, UInt64)] = []
        searchPath = rules.searchPath.filter { folder in
            var status = stat()
            guard stat(root + folder, &status) == 0 else { return folder == Self.configFolder }
            let identity = (UInt64(status.st_dev), UInt64(status.st_ino))
            if seen.contains(where: { $0 == identity }) { return false }
            seen.append(identity)
            return true
        }
        entries = [:]
        var status = stat()
        if stat(root + Self.configFolder, &status) == 0 { entries[Self.configFolder] = .directory }
        guard let walker = FileManager.default.enumerator(atPath: root + Self.configFolder) else { return }
        while let relative = walker.nextObject() as? String {
            let path = Self.configFolder + "/" + relative
            var status = stat()
            guard lstat(root + path, &status) == 0 else { continue }
            switch status.st_mode & S_IFMT {
            case S_IFDIR: entries[path] = .directory
            case S_IFLNK:
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: root + path)
                entries[path] = .link(target ?? "")
            default: entries[path] = .file
            }
        }
    }

    /// Every link under /etc/systemd/system now, by path, with its target.
    package var links: [String: String] {
        entries.compactMapValues { if case .link(let target) = $0 { target } else { nil } }
    }

    /// `systemctl enable NAME` (`.service` when NAME has no unit suffix).
    /// - Throws: when the unit does not exist (and has no SysV script), is masked, is an alias, or a link
    ///   it needs is taken by another unit.
    package mutating func enable(_ name: String) throws(BuilderError) -> Outcome {
        let unit = UnitName(mangling: name)
        var outcome = Outcome()
        outcome.sysvScript = sysvScript(for: unit)
        guard let path = try unitFile(for: unit, verb: "enable") else {
            if outcome.sysvScript != nil { return outcome }
            throw BuilderError("cannot enable unit \(unit.name): it does not exist")
        }
        guard path != "/dev/null" else { throw BuilderError("cannot enable unit \(unit.name): it is masked") }
        var queue = [(unit, path)]
        var done: Set<String> = []
        while !queue.isEmpty {
            var (unit, path) = queue.removeFirst()
            guard done.insert(unit.name).inserted else { continue }
            let install = try installSection(path)
            if unit.isTemplate, let instance = install.defaultInstance {
                unit = unit.with(instance: unit.expand(instance))
            }
            if done.count == 1 && !install.hasInstallInfo(isTemplate: unit.isTemplate) {
                outcome.notices.append("unit \(unit.name) has no installation config ([Install]); nothing to enable")
            }
            for alias in install.alias.map(unit.expand) {
                var aliasName = UnitName(mangling: alias)
                guard aliasName.suffix == unit.suffix else {
                    throw BuilderError("cannot enable unit \(unit.name): its alias \(alias) is of another type")
                }
                if unit.isInstance && aliasName.isTemplate, let instance = unit.instance {
                    aliasName = aliasName.with(instance: instance)
                }
                try link(Self.configFolder + "/" + aliasName.name, to: path, for: unit, &outcome)
            }
            if !unit.isTemplate {
                let kinds = [
                    ("wants", install.wantedBy), ("requires", install.requiredBy), ("upholds", install.upheldBy),
                ]
                for (kind, targets) in kinds {
                    for target in targets.map(unit.expand) {
                        let folder = Self.configFolder + "/" + UnitName(mangling: target).name + "." + kind
                        try link(folder + "/" + unit.name, to: path, for: unit, &outcome)
                    }
                }
            }
            for also in install.also.map(unit.expand) {
                let other = UnitName(mangling: also)
                guard let otherPath = try unitFile(for: other, verb: "enable"), otherPath != "/dev/null" else {
                    throw BuilderError("cannot enable unit \(unit.name): its Also= unit \(other.name) does not exist")
                }
                queue.append((other, otherPath))
            }
        }
        return outcome
    }

    /// `systemctl disable NAME`: every link under /etc/systemd/system named after the unit or one of its
    /// `Also=` units, or pointing to one of them; then the folders that this leaves empty. An alias stands
    /// for its unit. A unit that does not exist is a notice, as systemd 252 exits 0 for it.
    package mutating func disable(_ name: String) throws(BuilderError) -> Outcome {
        let unit = UnitName(mangling: name)
        var outcome = Outcome()
        outcome.sysvScript = sysvScript(for: unit)
        guard let (resolved, path) = try resolve(unit, verb: "disable", followingAliases: true) else {
            // systemd 252 says so and still succeeds.
            if outcome.sysvScript == nil { outcome.notices.append("unit \(unit.name) does not exist") }
            return outcome
        }
        if path == "/dev/null" {
            outcome.notices.append("unit \(unit.name) is masked, ignoring")
            return outcome
        }
        var names: Set<String> = [unit.name]
        var paths: Set<String> = []
        var done: Set<String> = []
        var queue = [(resolved, path)]
        while !queue.isEmpty {
            let (unit, path) = queue.removeFirst()
            guard done.insert(unit.name).inserted else { continue }
            names.insert(unit.name)
            // An instance's links point to its template's file, as its siblings' do: only names count.
            if !unit.isInstance { paths.insert(path) }
            for also in try installSection(path).also.map(unit.expand) {
                let other = UnitName(mangling: also)
                if let otherPath = try unitFile(for: other, verb: "disable"), otherPath != "/dev/null" {
                    queue.append((other, otherPath))
                }
            }
        }
        for (link, target) in links.sorted(by: { $0.key < $1.key }) {
            let linkName = (link as NSString).lastPathComponent
            let targetName = (target as NSString).lastPathComponent
            guard names.contains(linkName) || names.contains(targetName) || paths.contains(target) else { continue }
            entries[link] = nil
            outcome.removedLinks.append(link)
        }
        var emptied: Set<String> = []
        for link in outcome.removedLinks {
            var folder = (link as NSString).deletingLastPathComponent
            while folder != Self.configFolder && entries[folder] == .directory
                && !entries.keys.contains(where: { $0.hasPrefix(folder + "/") })
            {
                entries[folder] = nil
                emptied.insert(folder)
                folder = (folder as NSString).deletingLastPathComponent
            }
        }
        outcome.removedDirectories = emptied.sorted { ($0.count, $0) > ($1.count, $1) }
        return outcome
    }

    /// Carries an outcome out in the tree (as root): removals, then new folders and links.
    package func apply(_ outcome: Outcome) throws(BuilderError) {
        for link in outcome.removedLinks where unlink(root + link) != 0 {
            throw BuilderError("cannot remove \(root + link): errno \(errno)")
        }
        for folder in outcome.removedDirectories where rmdir(root + folder) != 0 {
            throw BuilderError("cannot remove \(root + folder): errno \(errno)")
        }
        for folder in outcome.createdDirectories where mkdir(root + folder, 0o755) != 0 && errno != EEXIST {
            throw BuilderError("cannot make \(root + folder): errno \(errno)")
        }
        for link in outcome.createdLinks where symlink(link.target, root + link.path) != 0 {
            throw BuilderError("cannot link \(root + link.path): errno \(errno)")
        }
    }
}
