import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Builder

/// `systemctl enable` and `disable` done on the host, judged against the host's own
/// `systemctl --root=DIR` on a copy of the same fake target: the links and folders under
/// /etc/systemd/system must be the same, path for path and target for target.
@Suite(.serialized, .requires(.root, .program("systemctl")))
struct UnitInstallerTests {
    /// Unit files modelled on Debian 12's (their `[Install]` sections as shipped).
    static let vendorUnits: [String: String] = [
        "ssh.service": """
        [Unit]
        Description=OpenBSD Secure Shell server
        After=network.target auditd.service

        [Service]
        ExecStart=/usr/sbin/sshd -D $SSHD_OPTS

        [Install]
        WantedBy=multi-user.target
        Alias=sshd.service

        """,
        "ssh.socket": "[Socket]\nListenStream=22\nAccept=yes\n\n[Install]\nWantedBy=sockets.target\n",
        "getty@.service": """
        [Unit]
        Description=Getty on %I

        [Service]
        ExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM

        [Install]
        WantedBy=getty.target
        DefaultInstance=tty1

        """,
        "serial-getty@.service": "[Service]\nExecStart=-/sbin/agetty %I\n\n[Install]\nWantedBy=getty.target\n",
        "systemd-networkd.service": """
        [Service]
        ExecStart=!!/lib/systemd/systemd-networkd

        [Install]
        WantedBy=multi-user.target
        Also=systemd-networkd.socket
        Alias=dbus-org.freedesktop.network1.service

        # We want to enable systemd-networkd-wait-online.service whenever this service
        # is enabled.
        Also=systemd-networkd-wait-online.service

        """,
        "systemd-networkd.socket": "[Socket]\nListenNetlink=route 1361\n\n[Install]\nWantedBy=sockets.target\n",
        "systemd-networkd-wait-online.service":
            "[Service]\nType=oneshot\n\n[Install]\nWantedBy=network-online.target\n",
        "avahi-daemon.service": """
        [Service]
        Type=dbus

        [Install]
        WantedBy=multi-user.target
        Also=avahi-daemon.socket
        Alias=dbus-org.freedesktop.Avahi.service

        """,
        "avahi-daemon.socket":
            "[Socket]\nListenStream=/run/avahi-daemon/socket\n\n[Install]\nWantedBy=sockets.target\n",
        "systemd-growfs-root.service": "[Service]\nType=oneshot\n\n[Install]\nRequiredBy=local-fs.target\n",
        "systemd-journald.service": "[Unit]\nDescription=Journal Service\n\n[Service]\nType=notify\n",
        "upheld.service": "[Service]\nType=simple\n\n[Install]\nUpheldBy=multi-user.target\n",
        "backup.timer": "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target \\\n  %N-extra.target\n",
    ]

    /// A merged-/usr target: units under /usr/lib, reached through /lib, and kiln's own unit under /etc.
    static func makeRoot(at root: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/usr/lib/systemd/system", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/etc/init.d", withIntermediateDirectories: true)
        try manager.createSymbolicLink(atPath: root + "/lib", withDestinationPath: "usr/lib")
        for (name, text) in vendorUnits {
            try text.write(toFile: root + "/usr/lib/systemd/system/" + name, atomically: false, encoding: .utf8)
        }
        try "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n[Install]\nWantedBy=multi-user.target\n"
            .write(toFile: root + "/etc/systemd/system/kiln-ssh-host-keys.service", atomically: false, encoding: .utf8)
    }

    enum Verb: String {
        case enable, disable
    }

    /// Runs the commands with `systemctl --root` in one copy and `UnitInstaller` in another, and compares.
    @discardableResult
    func compare(
        _ commands: [(Verb, String)], after setup: [(Verb, String)] = [],
        changing change: (String) throws -> Void = { _ in }
    ) async throws -> TreeSnapshot {
        let folder = try TemporaryFolder()
        let mine = folder.path + "/kiln"
        let judge = folder.path + "/judge"
        try Self.makeRoot(at: mine)
        try change(mine)
        try copyTree(mine, to: judge)
        var installer = UnitInstaller(root: mine)
        for (verb, name) in setup + commands {
            let (ended, output) = try await Subprocess.output(["systemctl", "--root=\(judge)", verb.rawValue, name])
            #expect(ended == .exited(0), "systemctl \(verb) \(name): \(output)")
            let outcome = verb == .enable ? try installer.enable(name) : try installer.disable(name)
            #expect(!outcome.needsGuest)
            try installer.apply(outcome)
        }
        let folders = ["etc/systemd"]
        let judged = TreeSnapshot(root: judge, folders: folders)
        TreeSnapshot(root: mine, folders: folders).expectSame(as: judged)
        return judged
    }

    @Test func enablingMakesTheSameLinks() async throws {
        let judged = try await compare(
            [
                (.enable, "kiln-ssh-host-keys.service"), (.enable, "ssh"), (.enable, "getty@"),
                (.enable, "serial-getty@ttyS0.service"), (.enable, "systemd-networkd"),
                (.enable, "avahi-daemon.service"), (.enable, "systemd-growfs-root"), (.enable, "upheld"),
                (.enable, "systemd-journald"), (.enable, "backup.timer"), (.enable, "ssh"),
            ])
        // Links name the file through /lib, the first of two search folders that are the same folder.
        let wants = "etc/systemd/system/getty.target.wants/getty@tty1.service"
        #expect(judged.entries[wants] == "link 777 0:0 -> /lib/systemd/system/getty@.service")
        #expect(judged.entries["etc/systemd/system/backup-extra.target.wants/backup.timer"] != nil)
        #expect(judged.entries.keys.contains { $0.contains("upholds") } == false)
        #expect(
            judged.entries["etc/systemd/system/dbus-org.freedesktop.network1.service"]
                == "link 777 0:0 -> /lib/systemd/system/systemd-networkd.service")
        #expect(judged.entries["etc/systemd/system/local-fs.target.requires/systemd-growfs-root.service"] != nil)
    }

    @Test func disablingRemovesTheSameLinksAndEmptiedFolders() async throws {
        let judged = try await compare(
            [
                (.disable, "ssh"), (.disable, "getty@tty3"), (.disable, "systemd-networkd"),
                (.disable, "dbus-org.freedesktop.Avahi.service"), (.disable, "systemd-journald"),
                (.disable, "nonexistent"),
            ],
            after: [
                (.enable, "ssh"), (.enable, "getty@"), (.enable, "getty@tty3"), (.enable, "systemd-networkd"),
                (.enable, "avahi-daemon"), (.enable, "ssh.socket"),
            ])
        #expect(judged.entries["etc/systemd/system/getty.target.wants/getty@tty1.service"] != nil)
        #expect(judged.entries["etc/systemd/system/sockets.target.wants/ssh.socket"] != nil)
        #expect(judged.entries["etc/systemd/system/multi-user.target.wants"] == nil)
    }

    /// Links a package's maintainer scripts left through /usr/lib, a masked unit, and an empty `.wants`.
    @Test func existingLinksMasksAndFolders() async throws {
        let judged = try await compare(
            [
                (.enable, "ssh"), (.disable, "avahi-daemon"), (.enable, "systemd-networkd"),
                (.disable, "systemd-networkd"), (.enable, "kiln-ssh-host-keys"), (.disable, "kiln-ssh-host-keys"),
            ],
            changing: { root in
                let manager = FileManager.default
                let etc = root + "/etc/systemd/system"
                try manager.createDirectory(atPath: etc + "/multi-user.target.wants", withIntermediateDirectories: true)
                try manager.createDirectory(atPath: etc + "/timers.target.wants", withIntermediateDirectories: true)
                try manager.createSymbolicLink(
                    atPath: etc + "/multi-user.target.wants/ssh.service",
                    withDestinationPath: "/usr/lib/systemd/system/ssh.service")
                try manager.createSymbolicLink(atPath: etc + "/avahi-daemon.service", withDestinationPath: "/dev/null")
            })
        #expect(
            judged.entries["etc/systemd/system/multi-user.target.wants/ssh.service"]
                == "link 777 0:0 -> /usr/lib/systemd/system/ssh.service")
        #expect(judged.entries["etc/systemd/system/avahi-daemon.service"] == "link 777 0:0 -> /dev/null")
        #expect(judged.entries["etc/systemd/system/timers.target.wants"] == "directory 755 0:0")
    }

    @Test func aMissingUnitIsAnErrorNamingIt() async throws {
        let folder = try TemporaryFolder()
        try Self.makeRoot(at: folder.path)
        let (ended, _) = try await Subprocess.output(["systemctl", "--root=\(folder.path)", "enable", "nosuch"])
        #expect(ended != .exited(0))
        var installer = UnitInstaller(root: folder.path)
        let error = #expect(throws: BuilderError.self) { try installer.enable("nosuch") }
        #expect(error?.message == "cannot enable unit nosuch.service: it does not exist")
        _ = try installer.enable("ssh")
        let alias = #expect(throws: BuilderError.self) { try installer.enable("sshd") }
        #expect(alias?.message.hasPrefix("cannot enable unit sshd.service: /etc/systemd/system/sshd.service") == true)
    }

    @Test func aUnitWithoutInstallSectionIsANotice() throws {
        let folder = try TemporaryFolder()
        try Self.makeRoot(at: folder.path)
        var installer = UnitInstaller(root: folder.path)
        let outcome = try installer.enable("systemd-journald")
        #expect(outcome.createdLinks.isEmpty)
        #expect(
            outcome.notices == [
                "unit systemd-journald.service has no installation config ([Install]); nothing to enable"
            ])
    }

    /// A SysV script is left to the guest (systemd-sysv-install runs update-rc.d there): alone, or beside a
    /// unit of the same name, whose links are still made here.
    @Test func aSysVScriptNeedsTheGuest() throws {
        let folder = try TemporaryFolder()
        try Self.makeRoot(at: folder.path)
        for name in ["legacy", "ssh"] {
            try "#!/bin/sh\n".write(toFile: folder.path + "/etc/init.d/" + name, atomically: false, encoding: .utf8)
        }
        var installer = UnitInstaller(root: folder.path)
        let legacy = try installer.enable("legacy")
        #expect(legacy.needsGuest && legacy.sysvScript == "/etc/init.d/legacy" && legacy.createdLinks.isEmpty)
        let ssh = try installer.enable("ssh.service")
        #expect(ssh.sysvScript == "/etc/init.d/ssh")
        #expect(
            Set(ssh.createdLinks) == [
                UnitInstaller.Link(path: "/etc/systemd/system/sshd.service", target: "/lib/systemd/system/ssh.service"),
                UnitInstaller.Link(
                    path: "/etc/systemd/system/multi-user.target.wants/ssh.service",
                    target: "/lib/systemd/system/ssh.service"),
            ])
        #expect(try installer.disable("legacy").sysvScript == "/etc/init.d/legacy")
    }
}
