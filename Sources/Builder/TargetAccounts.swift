import Foundation

/// The target's accounts, changed on the host as Debian 12's shadow tools (4.13) change them in a chroot:
/// `usermod -p HASH NAME`, `passwd -l NAME` and `useradd -m -u UID -U -s SHELL [-G GROUPS] NAME`.
///
/// Each change is applied to the databases in memory in the order it is made, as each tool rewrites
/// them, so that `edits` holds what the whole sequence leaves: the new databases, their `-` backups
/// (each the file as it was before its last rewrite), `/etc/.pwd.lock`, new homes and their skeleton.
package struct TargetAccounts: Sendable {
    /// One entry of the skeleton folder (`/etc/skel`), by its path below that folder.
    package struct SkeletonEntry: Sendable, Equatable {
        package var path: String
        package var kind: AccountEdits.Copy.Kind
        package var mode: UInt32

        package init(path: String, kind: AccountEdits.Copy.Kind, mode: UInt32) {
            self.path = path
            self.kind = kind
            self.mode = mode
        }
    }

    /// The files shadow's tools read or write, by absolute path in the target.
    package static let inputs =
        ["passwd", "shadow", "group", "gshadow", "subuid", "subgid", "login.defs", "default/useradd", ".pwd.lock"]
        .map { "/etc/" + $0 }

    var current: [String: TargetFile]
    var written: Set<String> = []
    var directories: [AccountEdits.Directory] = []
    var copies: [AccountEdits.Copy] = []
    var warnings: [String] = []
    let skeleton: [SkeletonEntry]
    let defaults: AccountDefaults
    let sourceDateEpoch: Int64
    let pathExists: @Sendable (String) -> Bool

    /// - Parameters:
    ///   - files: the target's files among `inputs` that exist (others are absent), by absolute path.
    ///   - skeleton: the entries of the skeleton folder (`SKEL` of `/etc/default/useradd`, `/etc/skel`).
    ///   - sourceDateEpoch: the time the tools are told (`SOURCE_DATE_EPOCH`), for shadow's last-change day.
    ///   - pathExists: whether a path exists in the target (a home, its parent).
    package init(
        files: [String: TargetFile], skeleton: [SkeletonEntry], sourceDateEpoch: Int64,
        pathExists: @escaping @Sendable (String) -> Bool
    ) {
        current = files
        self.skeleton = skeleton
        self.sourceDateEpoch = sourceDateEpoch
        self.pathExists = pathExists
        defaults = AccountDefaults(
            loginDefs: files["/etc/login.defs"]?.bytes, useradd: files["/etc/default/useradd"]?.bytes)
    }

    /// Reads the inputs and the skeleton folder from a tree on the host whose root is `root`.
    package static func reading(root: String, sourceDateEpoch: Int64) throws(BuilderError) -> TargetAccounts {
        var files: [String: TargetFile] = [:]
        for path in inputs {
            var status = stat()
            guard lstat(root + path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            guard let data = FileManager.default.contents(atPath: root + path) else {
                throw BuilderError("cannot read \(root + path)")
            }
            files[path] = TargetFile(
                bytes: Array(data), mode: UInt32(status.st_mode) & 0o7777, uid: status.st_uid, gid: status.st_gid)
        }
        let defaults = AccountDefaults(
            loginDefs: files["/etc/login.defs"]?.bytes, useradd: files["/etc/default/useradd"]?.bytes)
        let skeletonFolder = root + defaults.skeletonFolder
        var skeleton: [SkeletonEntry] = []
        if let walker = FileManager.default.enumerator(atPath: skeletonFolder) {
            while let path = walker.nextObject() as? String {
                var status = stat()
                guard lstat(skeletonFolder + "/" + path, &status) == 0 else { continue }
                let mode = UInt32(status.st_mode) & 0o7777
                switch status.st_mode & S_IFMT {
                case S_IFDIR: skeleton.append(SkeletonEntry(path: path, kind: .directory, mode: mode))
                case S_IFREG: skeleton.append(SkeletonEntry(path: path, kind: .file, mode: mode))
                case S_IFLNK:
                    let target =
                        (try? FileManager.default.destinationOfSymbolicLink(atPath: skeletonFolder + "/" + path))
                    skeleton.append(SkeletonEntry(path: path, kind: .symlink(target ?? ""), mode: 0o777))
                default: continue
                }
            }
        }
        return TargetAccounts(
            files: files, skeleton: skeleton, sourceDateEpoch: sourceDateEpoch,
            pathExists: { FileManager.default.fileExists(atPath: root + $0) })
    }

    /// Everything the changes so far leave in the target.
    package var edits: AccountEdits {
        AccountEdits(
            files: written.sorted().compactMap { path in
                current[path].map { AccountEdits.File(path: path, contents: $0) }
            },
            directories: directories, copies: copies, warnings: warnings)
    }

    // MARK: - The tools

    /// `usermod -p HASH NAME`: the password field of the user's shadow entry, and its last-change day.
    package mutating func setPasswordHash(_ hash: String, of name: String) throws(BuilderError) {
        guard var passwd = database("passwd"), let line = passwd.index(of: name) else {
            throw BuilderError("cannot set the password of '\(name)': no such user")
        }
        takeLock()
        if var shadow = database("shadow") {
            guard let entry = shadow.index(of: name) else {
                throw BuilderError("cannot set the password of '\(name)': the user has no entry in /etc/shadow")
            }
            var fields = padded(shadow.fields(entry), to: 9)
            fields[1] = hash
            fields[2] = lastChangeDay
            shadow.set(entry, fields)
            rewrite("passwd", passwd)
            rewrite("shadow", shadow)
        } else {
            var fields = padded(passwd.fields(line), to: 7)
            fields[1] = hash
            passwd.set(line, fields)
            rewrite("passwd", passwd)
        }
    }

    /// `passwd -l NAME`: a `!` before the password (once), nothing else.
    package mutating func lockPassword(of name: String) throws(BuilderError) {
        guard var passwd = database("passwd"), let line = passwd.index(of: name) else {
            throw BuilderError("cannot lock the password of '\(name)': no such user")
        }
        takeLock()
        if var shadow = database("shadow"), let entry = shadow.index(of: name) {
            var fields = padded(shadow.fields(entry), to: 9)
            if !fields[1].hasPrefix("!") { fields[1] = "!" + fields[1] }
            shadow.set(entry, fields)
            rewrite("shadow", shadow)
        } else {
            var fields = padded(passwd.fields(line), to: 7)
            if !fields[1].hasPrefix("!") { fields[1] = "!" + fields[1] }
            passwd.set(line, fields)
            rewrite("passwd", passwd)
        }
    }

    /// `useradd -m -u UID -U -s SHELL [-G GROUPS] NAME`: the user, its own group, membership of `groups`
    /// (by name or number), subordinate ids, and a home made from the skeleton folder.
    package mutating func addUser(
        _ name: String, uid: UInt32, groups: [String] = [], shell: String = "/bin/bash"
    ) throws(BuilderError) {
        func fail(_ reason: String) -> BuilderError { BuilderError("cannot add user '\(name)': \(reason)") }
        guard var passwd = database("passwd") else { throw fail("the target has no /etc/passwd") }
        guard var group = database("group") else { throw fail("the target has no /etc/group") }
        if passwd.index(of: name) != nil { throw fail("the user already exists") }
        if let owner = passwd.entries(minimumFields: 7).first(where: { UInt32($0.fields[2]) == uid }) {
            throw fail("UID \(uid) is not unique (it is \(owner.fields[0])'s)")
        }
        let groupEntries = group.entries(minimumFields: 4)
        if groupEntries.contains(where: { $0.fields[0] == name }) {
            throw fail("a group named '\(name)' already exists")
        }
        var members: [String] = []
        for wanted in groups {
            let match = groupEntries.first { $0.fields[0] == wanted } ?? groupEntries.first { $0.fields[2] == wanted }
            guard let match else { throw fail("group '\(wanted)' does not exist") }
            if !members.contains(match.fields[0]) { members.append(match.fields[0]) }
        }
        var shadow = database("shadow")
        if shadow?.index(of: name) != nil { throw fail("the user already exists in /etc/shadow") }
        var gshadow = database("gshadow")
        let gid = newGroupID(preferring: uid, in: groupEntries)
        let home = defaults.homeBase + "/" + name

        takeLock()
        passwd.append([name, shadow == nil ? "!" : "x", "\(uid)", "\(gid)", "", home, shell])
        shadow?.append(
            [name, "!", lastChangeDay] + ["PASS_MIN_DAYS", "PASS_MAX_DAYS", "PASS_WARN_AGE"].map { days($0) }
                + [inactiveDays, expiryDay, ""])
        for entry in group.entries(minimumFields: 4) where members.contains(entry.fields[0]) {
            group.set(entry.index, adding(name, toField: 3, of: entry.fields))
        }
        group.append([name, gshadow == nil ? "!" : "x", "\(gid)", ""])
        if var shadowGroups = gshadow {
            for entry in shadowGroups.entries(minimumFields: 4) where members.contains(entry.fields[0]) {
                shadowGroups.set(entry.index, adding(name, toField: 3, of: entry.fields))
            }
            shadowGroups.append([name, "!", "", ""])
            gshadow = shadowGroups
        }
        let subordinate =
            uid >= UInt32(clamping: defaults.number("UID_MIN", default: 1000))
            && uid <= UInt32(clamping: defaults.number("UID_MAX", default: 60000))
        var subuid = subordinate ? database("subuid") : nil
        var subgid = subordinate ? database("subgid") : nil
        if subuid != nil { try addSubordinateRange(for: name, to: &subuid, prefix: "SUB_UID", fail) }
        if subgid != nil { try addSubordinateRange(for: name, to: &subgid, prefix: "SUB_GID", fail) }

        rewrite("passwd", passwd)
        if let shadow { rewrite("shadow", shadow) }
        rewrite("group", group)
        if let gshadow { rewrite("gshadow", gshadow) }
        if let subuid { rewrite("subuid", subuid) }
        if let subgid { rewrite("subgid", subgid) }
        makeHome(home, uid: uid, gid: gid)
        makeMailSpool(for: name, uid: uid, gid: gid, groups: group)
    }

    /// `install -d -m 700 -o UID -g GID HOME/.ssh` and `install -m 600 -o UID -g GID KEYS
    /// HOME/.ssh/authorized_keys`: a `.ssh` the skeleton brought is given that mode and owner.
    package mutating func authorizeKeys(_ keys: [UInt8], home: String, uid: UInt32, gid: UInt32) {
        let folder = home + "/.ssh"
        if let copied = copies.firstIndex(where: { $0.destination == folder && $0.kind == .directory }) {
            copies[copied].mode = 0o700
            copies[copied].uid = uid
            copies[copied].gid = gid
        } else {
            directories.append(AccountEdits.Directory(path: folder, mode: 0o700, uid: uid, gid: gid))
        }
        let path = folder + "/authorized_keys"
        current[path] = TargetFile(bytes: keys, mode: 0o600, uid: uid, gid: gid)
        written.insert(path)
    }
}
