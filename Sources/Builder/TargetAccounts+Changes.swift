import Foundation

/// How shadow's tools write a database, number a group, date a password and lay out a home.
extension TargetAccounts {
    func database(_ name: String) -> ColonFile? { current["/etc/" + name].map { ColonFile($0.bytes) } }

    /// A database rewritten as shadow's `commonio` writes it: first a backup `NAME-` of the file as it was,
    /// then the new text; both keep the file's owner and its mode masked with 0664.
    mutating func rewrite(_ name: String, _ file: ColonFile) {
        let path = "/etc/" + name
        guard let old = current[path] else { return }
        let mode = old.mode & 0o664
        current[path + "-"] = TargetFile(bytes: old.bytes, mode: mode, uid: old.uid, gid: old.gid)
        current[path] = TargetFile(bytes: file.bytes, mode: mode, uid: old.uid, gid: old.gid)
        written.formUnion([path, path + "-"])
    }

    /// `lckpwdf(3)` makes `/etc/.pwd.lock` (empty, 0600, root's) when it is missing, and leaves it behind.
    mutating func takeLock() {
        let path = "/etc/.pwd.lock"
        guard current[path] == nil, !pathExists(path) else { return }
        current[path] = TargetFile(bytes: [], mode: 0o600)
        written.insert(path)
    }

    /// Days since 1970 at `SOURCE_DATE_EPOCH`, as shadow's `gettime() / DAY`; day 0 is written empty, so
    /// that a password set on 1970-01-01 does not read as one that must be changed.
    var lastChangeDay: String {
        let day = sourceDateEpoch >= 0 ? sourceDateEpoch / 86400 : (sourceDateEpoch - 86399) / 86400
        return day == 0 ? "" : "\(day)"
    }

    /// A shadow field from login.defs: -1, or no setting, is an empty field.
    func days(_ name: String) -> String {
        let value = defaults.number(name, default: -1)
        return value == -1 ? "" : "\(value)"
    }

    /// `INACTIVE` of /etc/default/useradd (-1, the default, is an empty field).
    var inactiveDays: String {
        guard let text = defaults.useradd["INACTIVE"], let value = Int64(text), value != -1 else { return "" }
        return "\(value)"
    }

    /// `EXPIRE` of /etc/default/useradd: a day number or `YYYY-MM-DD`, empty when unset.
    var expiryDay: String {
        guard let text = defaults.useradd["EXPIRE"], !text.isEmpty else { return "" }
        if let value = Int64(text) { return value == -1 ? "" : "\(value)" }
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return "" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        guard let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])) else {
            return ""
        }
        return "\(Int64(date.timeIntervalSince1970) / 86400)"
    }

    func padded(_ fields: [String], to count: Int) -> [String] {
        fields.count >= count ? fields : fields + Array(repeating: "", count: count - fields.count)
    }

    /// `fields` with `name` added to the comma-separated member list in field `index`, once.
    func adding(_ name: String, toField index: Int, of fields: [String]) -> [String] {
        var fields = padded(fields, to: index + 1)
        var members = fields[index].split(separator: ",").map(String.init)
        if !members.contains(name) { members.append(name) }
        fields[index] = members.joined(separator: ",")
        return fields
    }

    /// The new user's own group: the UID when no group has it and it is within GID_MIN...GID_MAX;
    /// otherwise one past the highest GID used in that range, or the lowest free one when that is the last.
    func newGroupID(preferring uid: UInt32, in entries: [(index: Int, fields: [String])]) -> UInt32 {
        let used = Set(entries.compactMap { UInt32($0.fields[2]) })
        let low = UInt32(clamping: defaults.number("GID_MIN", default: 1000))
        let high = UInt32(clamping: defaults.number("GID_MAX", default: 60000))
        if (low...high).contains(uid) && !used.contains(uid) { return uid }
        guard low <= high else { return uid }
        if let highest = used.filter({ (low...high).contains($0) }).max() {
            if highest < high { return highest + 1 }
            return (low...high).first { !used.contains($0) } ?? uid
        }
        return low
    }

    /// A subordinate id range for a new user (`SUB_UID_*` or `SUB_GID_*` of login.defs): none when the user
    /// has one or the count is 0 (the file is then left unwritten); otherwise the lowest free range of
    /// COUNT ids from MIN below MAX, appended after the existing ranges, which are sorted by start as
    /// shadow sorts them while searching.
    func addSubordinateRange(
        for name: String, to file: inout ColonFile?, prefix: String, _ fail: (String) -> BuilderError
    ) throws(BuilderError) {
        guard var ranges = file else { return }
        let count = defaults.number(prefix + "_COUNT", default: 65536)
        let entries = ranges.entries(minimumFields: 3).filter { $0.fields.count == 3 }
        if count <= 0 || entries.contains(where: { $0.fields[0] == name }) {
            file = nil
            return
        }
        let low = UInt64(clamping: defaults.number(prefix + "_MIN", default: 100000))
        let high = UInt64(clamping: defaults.number(prefix + "_MAX", default: 600_100_000))
        let parsed = entries.compactMap { entry -> (line: [UInt8], start: UInt64, count: UInt64, owner: String)? in
            guard let start = UInt64(entry.fields[1]), let count = UInt64(entry.fields[2]) else { return nil }
            return (ranges.lines[entry.index], start, count, entry.fields[0])
        }
        let sorted = parsed.sorted { ($0.start, $0.count, $0.owner) < ($1.start, $1.count, $1.owner) }
        let wanted = UInt64(count)
        var start: UInt64? = nil
        var next = low
        for range in sorted where range.count > 0 {
            let holeEnd = min(range.start, high + 1)
            if holeEnd > next && holeEnd - next >= wanted {
                start = next
                break
            }
            next = max(next, range.start + range.count)
            if next > high { break }
        }
        if start == nil && next <= high && high - next + 1 >= wanted { start = next }
        guard let start else {
            throw fail("no free range of \(wanted) subordinate ids (\(prefix)_MIN...\(prefix)_MAX)")
        }
        let sortedLines = Set(parsed.map(\.line))
        ranges.lines = sorted.map(\.line) + ranges.lines.filter { !sortedLines.contains($0) }
        ranges.append([name, "\(start)", "\(wanted)"])
        file = ranges
    }

    /// `useradd -m`: missing parents (0755, root's), the home (HOME_MODE, or 0777 less UMASK, the user's),
    /// then the skeleton copied with each entry's mode, owned by the user; a link into the skeleton folder
    /// is pointed into the home. A home that exists is left alone, without the skeleton.
    mutating func makeHome(_ home: String, uid: UInt32, gid: UInt32) {
        if pathExists(home) {
            warnings.append(
                "useradd: warning: the home directory \(home) already exists; not copying any file from skel into it")
            return
        }
        var parent = ""
        for part in home.split(separator: "/").dropLast() {
            parent += "/" + part
            if !pathExists(parent) && !directories.contains(where: { $0.path == parent }) {
                directories.append(AccountEdits.Directory(path: parent, mode: 0o755, uid: 0, gid: 0))
            }
        }
        let umask = defaults.number("UMASK", default: 0o022)
        let mode = UInt32(clamping: defaults.number("HOME_MODE", default: 0o777 & ~umask)) & 0o7777
        directories.append(AccountEdits.Directory(path: home, mode: mode, uid: uid, gid: gid))
        let folder = defaults.skeletonFolder
        for entry in skeleton.sorted(by: { $0.path < $1.path }) {
            var kind = entry.kind
            if case .symlink(let target) = kind, target.hasPrefix(folder) {
                kind = .symlink(home + target.dropFirst(folder.count))
            }
            copies.append(
                AccountEdits.Copy(
                    source: folder + "/" + entry.path, destination: home + "/" + entry.path, kind: kind,
                    mode: entry.mode, uid: uid, gid: gid))
        }
    }

    /// `CREATE_MAIL_SPOOL=yes` in /etc/default/useradd: an empty spool in MAIL_DIR, 0660 and group `mail`
    /// (0600 and the user's group when there is no such group).
    mutating func makeMailSpool(for name: String, uid: UInt32, gid: UInt32, groups: ColonFile) {
        guard defaults.useradd["CREATE_MAIL_SPOOL"]?.lowercased() == "yes" else { return }
        guard
            let folder = defaults.loginDefs["MAIL_DIR"] ?? (defaults.loginDefs["MAIL_FILE"] == nil ? "/var/mail" : nil)
        else { return }
        let path = folder + "/" + name
        if let mail = groups.entries(minimumFields: 4).first(where: { $0.fields[0] == "mail" }),
            let mailGID = UInt32(mail.fields[2])
        {
            current[path] = TargetFile(bytes: [], mode: 0o660, uid: uid, gid: mailGID)
        } else {
            current[path] = TargetFile(bytes: [], mode: 0o600, uid: uid, gid: gid)
        }
        written.insert(path)
    }
}
