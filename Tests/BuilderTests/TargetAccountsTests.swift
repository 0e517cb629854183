import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// Accounts made on the host, judged against Debian's own useradd, usermod and passwd run with `--root`
/// (a chroot, as the guest runs them) on a copy of the same fake target: every file under etc/, home/
/// and var/ must match byte for byte, with its mode and owner.
@Suite(
    .serialized,
    .requires(
        .root, .program("useradd"), .program("usermod"), .program("passwd"), .file("/etc/login.defs"),
        .file("/etc/default/useradd"), .file("/etc/skel")))
struct TargetAccountsTests {
    static let epoch: Int64 = 1_700_000_000
    static let hash =
        "$6$kilnsalt$4N8cL9Qq0y0mK7w2qJH1m3eJ0b3Y4b6E0p1xg4oUu2Ggq1WnX1hY0c0N9c6H0a3uQkVfW9d2b8o1E5a3Gm2p/"

    /// What the configure script does, one entry per command.
    enum Step {
        case rootHash(String)
        case lockRoot
        case user(String, uid: UInt32, groups: [String], hash: String?)
        case keys(String, uid: UInt32, String)
    }

    /// A fresh Debian 12 base's accounts (base-passwd, then the packages' postinsts), login.defs,
    /// default/useradd and skel copied from the host.
    static func makeBase(at root: String, subuid: String = "", richSkeleton: Bool = false) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/etc/default", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/home", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/var/log", withIntermediateDirectories: true)
        try copyTree("/etc/login.defs", to: root + "/etc/login.defs")
        try copyTree("/etc/default/useradd", to: root + "/etc/default/useradd")
        try copyTree("/etc/skel", to: root + "/etc/skel")
        let system = [
            ("root", 0, 0, "root", "/root", "/bin/bash"), ("daemon", 1, 1, "daemon", "/usr/sbin", nil),
            ("bin", 2, 2, "bin", "/bin", nil), ("sys", 3, 3, "sys", "/dev", nil),
            ("sync", 4, 65534, "sync", "/bin", "/bin/sync"), ("games", 5, 60, "games", "/usr/games", nil),
            ("man", 6, 12, "man", "/var/cache/man", nil), ("lp", 7, 7, "lp", "/var/spool/lpd", nil),
            ("mail", 8, 8, "mail", "/var/mail", nil), ("news", 9, 9, "news", "/var/spool/news", nil),
            ("uucp", 10, 10, "uucp", "/var/spool/uucp", nil), ("proxy", 13, 13, "proxy", "/bin", nil),
            ("www-data", 33, 33, "www-data", "/var/www", nil), ("backup", 34, 34, "backup", "/var/backups", nil),
            ("list", 38, 38, "Mailing List Manager", "/var/list", nil), ("irc", 39, 39, "ircd", "/run/ircd", nil),
            ("_apt", 42, 65534, "", "/nonexistent", nil), ("nobody", 65534, 65534, "nobody", "/nonexistent", nil),
            ("systemd-network", 998, 998, "systemd Network Management", "/", nil),
            ("systemd-timesync", 997, 997, "systemd Time Synchronization", "/", nil),
            ("messagebus", 100, 101, "", "/nonexistent", nil), ("sshd", 101, 65534, "", "/run/sshd", nil),
        ]
        let passwd = system.map { "\($0.0):x:\($0.1):\($0.2):\($0.3):\($0.4):\($0.5 ?? "/usr/sbin/nologin")\n" }
        let shadow = system.map { user in
            user.1 < 100 || user.1 == 65534 ? "\(user.0):*:19797:0:99999:7:::\n" : "\(user.0):!*:19797::::::\n"
        }
        let groups: [(String, Int)] = [
            ("root", 0), ("daemon", 1), ("bin", 2), ("sys", 3), ("adm", 4), ("tty", 5), ("disk", 6), ("lp", 7),
            ("mail", 8), ("news", 9), ("uucp", 10), ("man", 12), ("proxy", 13), ("kmem", 15), ("dialout", 20),
            ("fax", 21), ("voice", 22), ("cdrom", 24), ("floppy", 25), ("tape", 26), ("sudo", 27), ("audio", 29),
            ("dip", 30), ("www-data", 33), ("backup", 34), ("operator", 37), ("list", 38), ("irc", 39), ("src", 40),
            ("shadow", 42), ("utmp", 43), ("video", 44), ("sasl", 45), ("plugdev", 46), ("staff", 50),
            ("games", 60), ("users", 100), ("nogroup", 65534), ("systemd-journal", 999),
            ("systemd-network", 998), ("systemd-timesync", 997), ("messagebus", 101), ("_ssh", 102),
        ]
        let group = groups.map { "\($0.0):x:\($0.1):\n" }
        let gshadow = groups.map { "\($0.0):\($0.1 < 1000 && $0.1 > 100 && $0.1 != 65534 ? "!" : "*")::\n" }
        func write(_ name: String, _ lines: [String], mode: Int, group: Int = 0) throws {
            let path = root + "/etc/" + name
            try lines.joined().write(toFile: path, atomically: false, encoding: .utf8)
            try manager.setAttributes(
                [.posixPermissions: mode, .ownerAccountID: 0, .groupOwnerAccountID: group], ofItemAtPath: path)
        }
        try write("passwd", passwd, mode: 0o644)
        try write("shadow", shadow, mode: 0o640, group: 42)
        try write("group", group, mode: 0o644)
        try write("gshadow", gshadow, mode: 0o640, group: 42)
        try write("subuid", [subuid], mode: 0o644)
        try write("subgid", [subuid], mode: 0o644)
        // login's postinst makes an empty faillog; useradd only rewrites records the file already holds.
        try write("../var/log/faillog", [], mode: 0o644)
        if richSkeleton {
            let skel = root + "/etc/skel"
            try manager.createDirectory(atPath: skel + "/.config/kiln", withIntermediateDirectories: true)
            try manager.createDirectory(
                atPath: skel + "/.ssh", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try "private\n".write(toFile: skel + "/.config/kiln/secret", atomically: false, encoding: .utf8)
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: skel + "/.config/kiln/secret")
            try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: skel + "/.config")
            try manager.createSymbolicLink(atPath: skel + "/.bashrc-link", withDestinationPath: "/etc/skel/.bashrc")
            try manager.createSymbolicLink(atPath: skel + "/.relative", withDestinationPath: ".profile")
            try manager.createSymbolicLink(atPath: skel + "/.elsewhere", withDestinationPath: "/usr/share/doc")
        }
    }

    /// Runs the steps with the real tools in `judge` and with `TargetAccounts` in `mine`, and compares.
    @discardableResult
    func compare(
        _ steps: [Step], subuid: String = "", richSkeleton: Bool = false,
        changing change: (String) throws -> Void = { _ in }
    ) async throws -> TreeSnapshot {
        let folder = try TemporaryFolder()
        let mine = folder.path + "/kiln"
        let judge = folder.path + "/judge"
        try Self.makeBase(at: mine, subuid: subuid, richSkeleton: richSkeleton)
        try change(mine)
        try copyTree(mine, to: judge)
        // The guest runs the tools with /proc mounted in the target (install.sh): without it useradd 4.13
        // stops copying the skeleton at its first folder (it sets modes through /proc/self/fd), silently.
        try FileManager.default.createDirectory(atPath: judge + "/proc", withIntermediateDirectories: false)
        try #require(mount("/proc", judge + "/proc", nil, UInt(MS_BIND), nil) == 0, "mount --bind /proc: \(errno)")
        // Unmounted before the folder may go (defers run last first): its removal must not walk into /proc.
        defer { withExtendedLifetime(folder) {} }
        defer { umount2(judge + "/proc", Int32(MNT_DETACH)) }

        let environment = Subprocess.minimalEnvironment.merging(["SOURCE_DATE_EPOCH": "\(Self.epoch)"]) { $1 }
        func run(_ arguments: [String]) async throws {
            let (ended, output) = try await Subprocess.output(arguments, environment: environment)
            #expect(ended == .exited(0), "\(arguments.joined(separator: " ")): \(output)")
        }
        var accounts = try TargetAccounts.reading(root: mine, sourceDateEpoch: Self.epoch)
        for step in steps {
            switch step {
            case .rootHash(let hash):
                try await run(["usermod", "--root", judge, "-p", hash, "root"])
                try accounts.setPasswordHash(hash, of: "root")
            case .lockRoot:
                try await run(["passwd", "--root", judge, "-l", "root"])
                try accounts.lockPassword(of: "root")
            case .keys(let name, let uid, let keys):
                let file = folder.path + "/keys-" + name
                try keys.write(toFile: file, atomically: false, encoding: .utf8)
                let home = judge + "/home/" + name
                try await run(["install", "-d", "-m", "700", "-o", "\(uid)", "-g", "\(uid)", home + "/.ssh"])
                try await run([
                    "install", "-m", "600", "-o", "\(uid)", "-g", "\(uid)", file, home + "/.ssh/authorized_keys",
                ])
                accounts.authorizeKeys(Array(keys.utf8), home: "/home/" + name, uid: uid, gid: uid)
            case .user(let name, let uid, let groups, let hash):
                var add = ["useradd", "--root", judge, "-m", "-u", "\(uid)", "-U", "-s", "/bin/bash"]
                if !groups.isEmpty { add += ["-G", groups.joined(separator: ",")] }
                try await run(add + [name])
                try accounts.addUser(name, uid: uid, groups: groups)
                if let hash {
                    try await run(["usermod", "--root", judge, "-p", hash, name])
                    try accounts.setPasswordHash(hash, of: name)
                }
            }
        }
        try accounts.edits.apply(to: mine)
        let folders = ["etc", "home", "var"]
        let judged = TreeSnapshot(root: judge, folders: folders)
        TreeSnapshot(root: mine, folders: folders).expectSame(as: judged)
        return judged
    }

    @Test func noUsersAndRootLocked() async throws {
        try await compare([.lockRoot])
    }

    @Test func noUsersAndRootWithAHash() async throws {
        try await compare([.rootHash(Self.hash)])
    }

    @Test func oneUserWithGroupsAPasswordAndKeys() async throws {
        try await compare([
            .rootHash(Self.hash), .user("alice", uid: 1000, groups: ["sudo", "adm"], hash: Self.hash),
            .keys("alice", uid: 1000, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln one\nssh-rsa AAAAB3Nza two\n"),
        ])
    }

    /// Two users with SSH keys, subordinate ranges already taken out of order, and a skeleton with a
    /// private folder, a `.ssh` of its own, and links into and out of it.
    @Test func twoUsersBesideExistingSubordinateRanges() async throws {
        let judged = try await compare(
            [
                .lockRoot, .user("alice", uid: 1000, groups: ["sudo"], hash: Self.hash),
                .keys("alice", uid: 1000, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln alice@example\n"),
                .user("bob", uid: 1001, groups: [], hash: nil),
                .keys("bob", uid: 1001, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln bob@example\n"),
            ], subuid: "zed:300000:65536\nold:165536:65536\n", richSkeleton: true)
        // Each useradd sorts the ranges by start, then appends its own in the first gap big enough.
        #expect(
            judged.entries["etc/subuid"]
                == "file 644 0:0\nalice:100000:65536\nold:165536:65536\nzed:300000:65536\nbob:231072:65536\n")
        #expect(judged.entries["etc/shadow"]?.contains("\nbob:!:19675:0:99999:7:::\n") == true)
        #expect(judged.entries["home/bob/.bashrc-link"] == "link 777 1001:1001 -> /home/bob/.bashrc")
    }

    /// Settings a fresh base does not have: HOME_MODE, a mail spool, account expiry and inactivity, a group
    /// with members already, the UID's own GID taken by another group, and a home that already exists.
    @Test func settingsAndCollisionsOfAnOlderSystem() async throws {
        let judged = try await compare(
            [
                .rootHash(Self.hash), .user("alice", uid: 1000, groups: ["sudo", "27", "docker"], hash: nil),
                .user("carol", uid: 1001, groups: ["adm"], hash: Self.hash),
            ],
            changing: { root in
                func append(_ text: String, to path: String) throws {
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: root + path))
                    try handle.seekToEnd()
                    try handle.write(contentsOf: Data(text.utf8))
                    try handle.close()
                }
                try append("HOME_MODE\t0750\n", to: "/etc/login.defs")
                try append("CREATE_MAIL_SPOOL=yes\nINACTIVE=30\nEXPIRE=2030-01-01\n", to: "/etc/default/useradd")
                try append("docker:x:1001:bob\n", to: "/etc/group")
                try append("docker:!::bob\n", to: "/etc/gshadow")
                let group = try String(contentsOfFile: root + "/etc/group", encoding: .utf8)
                try group.replacingOccurrences(of: "\nsudo:x:27:\n", with: "\nsudo:x:27:bob\n")
                    .write(toFile: root + "/etc/group", atomically: false, encoding: .utf8)
                try FileManager.default.createDirectory(atPath: root + "/var/mail", withIntermediateDirectories: true)
                try FileManager.default.createDirectory(
                    atPath: root + "/home/carol", withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o711])
            })
        #expect(judged.entries["etc/group"]?.contains("\nsudo:x:27:bob,alice\n") == true)
        #expect(judged.entries["home/alice"] == "directory 750 1000:1000")
        #expect(judged.entries["home/carol"] == "directory 711 0:0")
        #expect(judged.entries["var/mail/alice"] == "file 660 1000:8\n")
        // carol's UID is docker's GID: her group takes the next one after the highest in GID_MIN...GID_MAX.
        #expect(judged.entries["etc/passwd"]?.contains("\ncarol:x:1001:1002::/home/carol:/bin/bash\n") == true)
        #expect(judged.entries["etc/shadow"]?.contains("\ncarol:\(Self.hash):19675:0:99999:7:30:21915:\n") == true)
    }

    /// A target without shadow, gshadow, subuid or subgid: passwords and group passwords in passwd and group.
    @Test func aTargetWithoutShadowFiles() async throws {
        let judged = try await compare(
            [.lockRoot, .user("alice", uid: 1000, groups: ["sudo"], hash: Self.hash)],
            changing: { root in
                for name in ["shadow", "gshadow", "subuid", "subgid"] {
                    try FileManager.default.removeItem(atPath: root + "/etc/" + name)
                }
            })
        #expect(judged.entries["etc/shadow"] == nil)
        #expect(judged.entries["etc/passwd"]?.contains("\nroot:!x:0:0:root:/root:/bin/bash\n") == true)
        #expect(judged.entries["etc/group"]?.contains("\nalice:!:1000:\n") == true)
    }

    @Test func aMissingGroupIsAnErrorNamingTheUserAndTheGroup() async throws {
        let folder = try TemporaryFolder()
        try Self.makeBase(at: folder.path)
        let before = TreeSnapshot(root: folder.path, folders: ["etc", "home"])
        let (ended, _) = try await Subprocess.output([
            "useradd", "--root", folder.path, "-m", "-u", "1000", "-U", "-s", "/bin/bash", "-G", "sudo,wheel", "alice",
        ])
        #expect(ended != .exited(0))
        // useradd takes its lock before it checks the groups, and leaves /etc/.pwd.lock behind.
        var after = TreeSnapshot(root: folder.path, folders: ["etc", "home"])
        #expect(after.entries.removeValue(forKey: "etc/.pwd.lock") != nil)
        after.expectSame(as: before)

        var accounts = try TargetAccounts.reading(root: folder.path, sourceDateEpoch: Self.epoch)
        let error = #expect(throws: BuilderError.self) {
            try accounts.addUser("alice", uid: 1000, groups: ["sudo", "wheel"])
        }
        #expect(error?.message == "cannot add user 'alice': group 'wheel' does not exist")
        #expect(accounts.edits == AccountEdits())
    }

    @Test func aTakenNameOrUIDIsAnError() throws {
        let folder = try TemporaryFolder()
        try Self.makeBase(at: folder.path)
        var accounts = try TargetAccounts.reading(root: folder.path, sourceDateEpoch: Self.epoch)
        try accounts.addUser("alice", uid: 1000)
        #expect(throws: BuilderError.self) { try accounts.addUser("alice", uid: 1001) }
        let taken = #expect(throws: BuilderError.self) { try accounts.addUser("bob", uid: 1000) }
        #expect(taken?.message == "cannot add user 'bob': UID 1000 is not unique (it is alice's)")
        let unknown = #expect(throws: BuilderError.self) { try accounts.setPasswordHash("x", of: "carol") }
        #expect(unknown?.message == "cannot set the password of 'carol': no such user")
    }
}
