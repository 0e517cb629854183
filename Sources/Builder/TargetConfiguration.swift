import Appliance
import Foundation
import KilnArchive
import KilnSupport

/// The files kiln writes into the target after its packages are configured, and `/kiln/configure.sh`,
/// which the target's own shell runs to make accounts and enable services.
struct TargetConfiguration {
    /// The first user's id; the description's users follow in order.
    static let firstUID = 1000

    let job: InstallJob
    private var appliance: Appliance { job.appliance }

    func write(to writer: ArchiveWriter) throws(ArchiveError) {
        let time = job.sourceDateEpoch
        var made: Set<String> = []
        func directory(_ path: String) throws(ArchiveError) {
            var prefix = ""
            for part in path.split(separator: "/") {
                prefix += prefix.isEmpty ? String(part) : "/\(part)"
                if made.insert(prefix).inserted {
                    try writer.add(
                        ArchiveEntry(path: prefix, kind: .directory, permissions: 0o755, modificationTime: time))
                }
            }
        }
        func file(_ path: String, _ text: String, mode: UInt32 = 0o644) throws(ArchiveError) {
            if let slash = path.lastIndex(of: "/") { try directory(String(path[..<slash])) }
            try writer.addFile(
                ArchiveEntry(path: path, kind: .file, permissions: mode, modificationTime: time),
                contents: Array(text.utf8))
        }

        let hostname = appliance.effectiveHostname
        try file("etc/hostname", hostname + "\n")
        try file(
            "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t\(hostname)\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        try file("etc/fstab", job.layout.fstab)
        if let crypttab = job.layout.crypttab { try file("etc/crypttab", crypttab) }
        try file("etc/default/grub", grubDefaults)
        try file("etc/network/interfaces", networkInterfaces)
        if let resolv = resolvConf { try file("etc/resolv.conf", resolv) }
        try file("etc/timezone", appliance.os.timezone + "\n")
        try file("etc/default/locale", "LANG=\(appliance.os.locale)\n")
        try file(
            "etc/default/keyboard",
            "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"\(appliance.os.keyboard)\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\nBACKSPACE=\"guess\"\n"
        )
        if let sources = job.aptSources { try file("etc/apt/sources.list.d/kiln.sources", sources) }
        for user in appliance.users {
            guard let rule = user.sudoersLine else { continue }
            try file("etc/sudoers.d/kiln-\(user.name)", rule + "\n", mode: 0o440)
        }
        // SSH host keys are made at first boot, so that every clone has its own.
        try file(
            "etc/systemd/system/kiln-ssh-host-keys.service",
            """
            [Unit]
            Description=Make SSH host keys on first boot (kiln)
            Before=ssh.service
            ConditionPathExists=/usr/bin/ssh-keygen

            [Service]
            Type=oneshot
            ExecStart=/usr/bin/ssh-keygen -A

            [Install]
            WantedBy=multi-user.target

            """)
        try file(
            "etc/systemd/system/ssh.service.d/kiln-host-keys.conf",
            "[Unit]\nWants=kiln-ssh-host-keys.service\nAfter=kiln-ssh-host-keys.service\n")
        if job.configuresOnHost {
            try writer.add(
                ArchiveEntry(
                    path: "etc/localtime", kind: .symlink(target: "/usr/share/zoneinfo/" + appliance.os.timezone),
                    permissions: 0o777, modificationTime: time))
        } else {
            for (index, user) in appliance.users.enumerated() where !user.sshKeys.isEmpty {
                try file("kiln/keys/\(index)", user.sshKeys.joined(separator: "\n") + "\n", mode: 0o600)
            }
        }
        for group in appliance.files {
            for source in group.sources {
                let path: String
                switch source {
                case .local(let local, _): path = local
                case .url(let url):
                    guard let cached = job.remoteFiles[url] else {
                        throw ArchiveError(appliance.sourcePath, "files: \(url) was not fetched; run 'kiln lock' again")
                    }
                    path = cached
                }
                let target = String(group.target.drop { $0 == "/" })
                // A source keeps its folders under the target (`ntp/step-tickers`).
                let parent = ((target as NSString).appendingPathComponent(source.fileName) as NSString)
                    .deletingLastPathComponent
                try directory(parent)
                let mode: UInt32 = FileManager.default.isExecutableFile(atPath: path) ? 0o755 : 0o644
                try writer.addFile(
                    ArchiveEntry(
                        path: "\(target)/\(source.fileName)", kind: .file, permissions: mode, modificationTime: time),
                    streamingFrom: path)
            }
        }
        try file("kiln/configure.sh", configureScript, mode: 0o755)
    }

    /// The kernel arguments kiln adds (console, interface names, the description's `kernel_args`).
    var kernelCommandLine: String {
        var args: [String] = []
        if let console = appliance.console { args += ["console=tty0", "console=\(console)"] }
        if usesClassicInterfaceNames { args.append("net.ifnames=0") }
        if let extra = appliance.kernelArgs, !extra.isEmpty { args.append(extra) }
        return args.joined(separator: " ")
    }

    private var grubDefaults: String {
        var lines = [
            "# written by kiln",
            "GRUB_DEFAULT=0",
            "GRUB_TIMEOUT=1",
            "GRUB_DISTRIBUTOR=Debian",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"\"",
            "GRUB_CMDLINE_LINUX=\"\(kernelCommandLine.replacingAll("\"", ""))\"",
            "GRUB_DISABLE_OS_PROBER=true",
        ]
        if appliance.console != nil && SerialConsole.grubUsesFirmwareConsole(on: appliance.hardware.arch) {
            lines.append("GRUB_TERMINAL=console")
        } else if let console = appliance.console {
            lines += [
                "GRUB_TERMINAL=\"console serial\"",
                "GRUB_SERIAL_COMMAND=\"\(console.grubSerialCommand)\"",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Without named interfaces, the first NIC is `eth0` on every hypervisor (`net.ifnames=0`).
    private var usesClassicInterfaceNames: Bool {
        appliance.network.allSatisfy(\.isDefault)
    }

    private var networkInterfaces: String {
        var lines = [
            "# written by kiln", "source /etc/network/interfaces.d/*", "", "auto lo", "iface lo inet loopback",
        ]
        let interfaces = appliance.network.isEmpty ? [NetworkInterface(interface: "default")] : appliance.network
        for interface in interfaces {
            let name = interface.isDefault ? "eth0" : interface.interface
            lines += ["", "allow-hotplug \(name)"]
            if let address = interface.staticAddress {
                lines.append("iface \(name) inet static")
                lines.append("    address \(address.address)/\(address.prefixLength)")
                if let gateway = address.gateway { lines.append("    gateway \(gateway)") }
            } else {
                lines.append("iface \(name) inet dhcp")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private var resolvConf: String? {
        let servers = appliance.network.compactMap(\.staticAddress).flatMap(\.dns)
        guard !servers.isEmpty else { return nil }
        return servers.map { "nameserver \($0)\n" }.joined()
    }

    /// Run by the target's `/bin/sh` in a chroot. Every value is single-quoted.
    private var configureScript: String {
        let q = ShellQuote.quote
        var lines = ["#!/bin/sh", "# written by kiln", "set -eu"]
        if !job.configuresOnHost {
            lines.append("ln -sf \(q("/usr/share/zoneinfo/" + appliance.os.timezone)) /etc/localtime")
        }
        let locale = appliance.os.locale
        if locale != "C.UTF-8" && locale != "C" && locale != "POSIX" {
            lines.append("if [ -x /usr/sbin/locale-gen ]; then")
            lines.append(
                "  echo \(q("\(locale) \(locale.hasSuffix("UTF-8") ? "UTF-8" : "ISO-8859-1")")) > /etc/locale.gen")
            lines.append("  locale-gen > /dev/null")
            lines.append("fi")
        }
        // The host made the accounts and services (HostConfiguration).
        if job.configuresOnHost { return lines.joined(separator: "\n") + "\n" }
        if let hash = appliance.os.passwordHash {
            lines.append("usermod -p \(q(hash)) root")
        } else {
            lines.append("passwd -l root > /dev/null")
        }
        for (index, user) in appliance.users.enumerated() {
            let uid = Self.firstUID + index
            var add = "useradd -m -u \(uid) -U -s /bin/bash"
            if !user.groups.isEmpty { add += " -G \(q(user.groups.joined(separator: ",")))" }
            lines.append("\(add) \(q(user.name))")
            if let hash = user.passwordHash { lines.append("usermod -p \(q(hash)) \(q(user.name))") }
            if !user.sshKeys.isEmpty {
                let home = "/home/\(user.name)"
                lines.append("install -d -m 700 -o \(uid) -g \(uid) \(q(home + "/.ssh"))")
                lines.append(
                    "install -m 600 -o \(uid) -g \(uid) /kiln/keys/\(index) \(q(home + "/.ssh/authorized_keys"))")
            }
        }
        lines.append("systemctl enable kiln-ssh-host-keys.service > /dev/null 2>&1")
        for service in appliance.services.enable {
            lines.append("systemctl enable \(q(service))")
        }
        for service in appliance.services.disable {
            lines.append("systemctl disable \(q(service))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
