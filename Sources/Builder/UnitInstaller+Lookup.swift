import Foundation

/// Finding and reading unit files, and making links, as `systemctl --root` does.
extension UnitInstaller {
    /// The unit's file as systemctl names it in a link (search folder + file name); `/dev/null` when the
    /// unit is masked; nil when there is none. An instance falls back to its template, after every folder.
    /// - Throws: when the name is an alias or a linked unit file, which systemctl refuses to operate on.
    func unitFile(for unit: UnitName, verb: String) throws(BuilderError) -> String? {
        try resolve(unit, verb: verb, followingAliases: false)?.path
    }

    /// The unit a name stands for and its file (see `unitFile`); an alias, when `followingAliases` (as
    /// `disable` does), stands for the unit its link names.
    func resolve(
        _ unit: UnitName, verb: String, followingAliases: Bool, depth: Int = 0
    ) throws(BuilderError) -> (unit: UnitName, path: String)? {
        let candidates = unit.isInstance ? [unit, unit.template] : [unit]
        for candidate in candidates {
            for folder in searchPath {
                let path = folder + "/" + candidate.name
                let entry: Entry?
                if folder == Self.configFolder {
                    entry = entries[path]
                } else {
                    var status = stat()
                    if lstat(root + path, &status) != 0 {
                        entry = nil
                    } else if status.st_mode & S_IFMT == S_IFLNK {
                        entry = .link((try? FileManager.default.destinationOfSymbolicLink(atPath: root + path)) ?? "")
                    } else {
                        entry = status.st_mode & S_IFMT == S_IFREG ? .file : nil
                    }
                }
                switch entry {
                case .file: return (unit, path)
                case .link("/dev/null"): return (unit, "/dev/null")
                case .link(let target) where followingAliases && depth < 8:
                    let named = UnitName(mangling: (target as NSString).lastPathComponent)
                    return try resolve(named, verb: verb, followingAliases: true, depth: depth + 1)
                case .link(let target):
                    throw BuilderError(
                        "cannot \(verb) unit \(unit.name): \(path) is an alias or a linked unit file (it points to "
                            + "\(target)); \(verb) the unit it names instead")
                case .directory, nil: continue
                }
            }
        }
        return nil
    }

    /// The `[Install]` section of the unit file at `path` in the target.
    func installSection(_ path: String) throws(BuilderError) -> UnitInstallSection {
        guard let data = FileManager.default.contents(atPath: root + path) else {
            throw BuilderError("cannot read unit file \(root + path)")
        }
        return UnitInstallSection(String(decoding: data, as: UTF8.self), knowsUpheldBy: rules.knowsUpheldBy)
    }

    /// `/etc/init.d/NAME` for `NAME.service` when it exists: systemctl passes such a service to
    /// `systemd-sysv-install` as well as (or, without a unit file, instead of) enabling its unit.
    func sysvScript(for unit: UnitName) -> String? {
        guard unit.suffix == "service", unit.instance == nil else { return nil }
        let path = "/etc/init.d/" + unit.prefix
        var status = stat()
        return lstat(root + path, &status) == 0 ? path : nil
    }

    /// A link at `path` to `target`, with its missing folders; one that exists and names the same unit
    /// file (by name, as systemd takes `/usr/lib/...` and `/lib/...` for the same) is left as it is.
    mutating func link(
        _ path: String, to target: String, for unit: UnitName, _ outcome: inout Outcome
    ) throws(BuilderError) {
        switch entries[path] {
        case .link(let existing):
            if existing == target
                || (existing as NSString).lastPathComponent == (target as NSString).lastPathComponent
            {
                return
            }
            throw BuilderError("cannot enable unit \(unit.name): \(path) already links to \(existing)")
        case .file, .directory:
            throw BuilderError("cannot enable unit \(unit.name): \(path) exists and is not a link")
        case nil:
            var missing: [String] = []
            var folder = (path as NSString).deletingLastPathComponent
            // Below /etc/systemd/system the calls so far decide; above it, the tree.
            func exists(_ folder: String) -> Bool {
                folder.hasPrefix(Self.configFolder)
                    ? entries[folder] != nil : FileManager.default.fileExists(atPath: root + folder)
            }
            while !exists(folder) && folder != "/" {
                missing.insert(folder, at: 0)
                folder = (folder as NSString).deletingLastPathComponent
            }
            for folder in missing {
                entries[folder] = .directory
                outcome.createdDirectories.append(folder)
            }
            entries[path] = .link(target)
            outcome.createdLinks.append(Link(path: path, target: target))
        }
    }
}
