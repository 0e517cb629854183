import Appliance
import Foundation
import KilnSupport

/// Writes the kickstart for an RPM-family appliance (Fedora, RHEL, CentOS, Rocky, AlmaLinux).
///
/// Pure: the description in, text out (local `files` are read through `readFile`). The same
/// description always gives the same bytes.
public struct KickstartRenderer: Sendable {
    public var endAction: EndAction
    public var readFile: FileReader

    public init(endAction: EndAction = .reboot, readFile: FileReader = .disk) {
        self.endAction = endAction
        self.readFile = readFile
    }

    /// The pykickstart syntax version for a release (`F40`, `RHEL9`), as `ksvalidator -v` takes it.
    public static func syntaxVersion(for os: OperatingSystem) -> String {
        let major = os.majorVersion ?? 0
        switch os.name {
        case .fedora: return "F\(major)"
        default: return "RHEL\(major)"
        }
    }

    /// The kickstart text.
    /// - Throws: `AutoinstallError` for a Debian-family description or an unreadable file.
    public func render(_ appliance: Appliance) throws(AutoinstallError) -> String {
        guard appliance.os.name.family == .redHat else {
            throw AutoinstallError(
                .wrongFamily,
                "\(appliance.name) is a \(appliance.os.name.rawValue) appliance: "
                    + "kickstarts are for fedora, rhel, centos, rocky and almalinux (use kiln preseed)"
            )
        }
        var out = Header.lines(appliance, generator: "Kickstart")
        out.append("text")
        out.append("lang \(appliance.os.locale)")
        out.append("keyboard --vckeymap=\(appliance.os.keyboard) --xlayouts=\(appliance.os.keyboard)")
        out.append("timezone \(appliance.os.timezone) --utc")
        if let hash = appliance.os.passwordHash {
            out.append("rootpw --iscrypted \(hash)")
        } else {
            out.append("rootpw --lock")
        }
        for user in appliance.users {
            var line = "user --name=\(user.name)"
            if !user.groups.isEmpty { line += " --groups=\(user.groups.joined(separator: ","))" }
            if let hash = user.passwordHash { line += " --iscrypted --password=\(hash)" }
            out.append(line)
            // pykickstart takes one sshkey per user; %post adds the others.
            if let key = user.sshKeys.first { out.append("sshkey --username=\(user.name) \"\(key)\"") }
        }
        out += networkLines(appliance)
        var bootloader = "bootloader --location=mbr --timeout=1"
        let append = Header.kernelArguments(appliance)
        if !append.isEmpty { bootloader += " --append=\"\(append)\"" }
        out.append(bootloader)
        out += diskLines(appliance)
        out += repoLines(appliance)
        out.append("selinux --enforcing")
        out.append("firewall --enabled --ssh")
        var services: [String] = []
        if !appliance.services.enable.isEmpty {
            services.append("--enabled=\(appliance.services.enable.joined(separator: ","))")
        }
        if !appliance.services.disable.isEmpty {
            services.append("--disabled=\(appliance.services.disable.joined(separator: ","))")
        }
        if !services.isEmpty { out.append((["services"] + services).joined(separator: " ")) }
        out.append("skipx")
        out.append("firstboot --disabled")
        out.append(endAction.rawValue)
        out.append("")
        out.append("%packages")
        out += appliance.packages
        out.append("%end")
        out.append("")
        out.append("%post --erroronfail")
        out += try postLines(appliance)
        out.append("%end")
        return out.joined(separator: "\n") + "\n"
    }

    private func networkLines(_ appliance: Appliance) -> [String] {
        var lines: [String] = []
        let interfaces = appliance.network.isEmpty ? [NetworkInterface(interface: "default")] : appliance.network
        for interface in interfaces {
            let device = interface.isDefault ? "link" : interface.interface
            guard let config = interface.staticAddress else {
                lines.append("network --bootproto=dhcp --device=\(device) --activate --onboot=on")
                continue
            }
            var line =
                "network --bootproto=static --device=\(device) --ip=\(config.address) --netmask=\(config.netmask)"
            if let gateway = config.gateway { line += " --gateway=\(gateway)" }
            if !config.dns.isEmpty { line += " --nameserver=\(config.dns.joined(separator: ","))" }
            lines.append(line + " --activate --onboot=on")
        }
        lines.append("network --hostname=\(appliance.effectiveHostname)")
        return lines
    }

    private func diskLines(_ appliance: Appliance) -> [String] {
        var lines = ["zerombr", "clearpart --all --initlabel --disklabel=gpt"]
        let firmware = appliance.hardware.firmware
        let hasESP = appliance.hardware.partitions.contains { $0.mountPoint == "/boot/efi" }
        if firmware != .uefi { lines.append("part biosboot --fstype=biosboot --size=1") }
        if firmware != .bios && !hasESP { lines.append("part /boot/efi --fstype=efi --size=600") }
        for partition in appliance.hardware.partitions {
            var line = "part \(partition.mountPoint) --size=\(partition.size.mebibytes)"
            let fstype =
                partition.mountPoint == "/boot/efi" && partition.type == .vfat ? "efi" : partition.type.rawValue
            line += " --fstype=\(fstype)"
            if let options = partition.options { line += " --fsoptions=\"\(options)\"" }
            if partition.grow { line += " --grow" }
            if let passphrase = partition.passphrase { line += " --encrypted --passphrase=\"\(passphrase)\"" }
            lines.append(line)
        }
        return lines
    }

    /// Repos by cost (stable): without default repos the cheapest is also the install source.
    private func repoLines(_ appliance: Appliance) -> [String] {
        let repos = Self.sortedByCost(appliance.repos)
        var lines: [String] = []
        if !appliance.defaultRepos, let first = repos.first {
            if let url = first.baseurl {
                lines.append("url --url=\(url)")
            } else if let list = first.mirrorlist {
                lines.append("url --mirrorlist=\(list)")
            }
        }
        for repo in repos {
            var line = "repo --name=\(repo.name)"
            if let url = repo.baseurl { line += " --baseurl=\(url)" }
            if let list = repo.mirrorlist { line += " --mirrorlist=\(list)" }
            if let cost = repo.cost { line += " --cost=\(cost)" }
            if !repo.ephemeral { line += " --install" }
            lines.append(line)
        }
        return lines
    }

    static func sortedByCost(_ repos: [Repository]) -> [Repository] {
        repos.enumerated().sorted { a, b in
            (a.element.cost ?? 1000, a.offset) < (b.element.cost ?? 1000, b.offset)
        }.map(\.element)
    }

    private func postLines(_ appliance: Appliance) throws(AutoinstallError) -> [String] {
        var lines: [String] = []
        for user in appliance.users where user.sudo {
            let path = ShellQuote.quote("/etc/sudoers.d/\(user.name)")
            lines.append("# kiln: sudo \(user.name)")
            lines.append("printf '%s\\n' \(ShellQuote.quote("\(user.name) ALL=(ALL) NOPASSWD: ALL")) > \(path)")
            lines.append("chmod 0440 \(path)")
        }
        for user in appliance.users where user.sshKeys.count > 1 {
            let dir = "/home/\(user.name)/.ssh"
            lines.append("# kiln: sshkey \(user.name)")
            lines.append("install -d -m 0700 -o \(user.name) -g \(user.name) \(dir)")
            for key in user.sshKeys.dropFirst() {
                lines.append("printf '%s\\n' \(ShellQuote.quote(key)) >> \(dir)/authorized_keys")
            }
            lines.append("chown \(user.name):\(user.name) \(dir)/authorized_keys")
            lines.append("chmod 0600 \(dir)/authorized_keys")
        }
        if !appliance.files.isEmpty {
            lines.append("# kiln: files")
            for group in appliance.files {
                lines.append("mkdir -p \(ShellQuote.quote(group.target))")
                for source in group.sources {
                    let target = ShellQuote.quote((group.target as NSString).appendingPathComponent(source.fileName))
                    switch source {
                    case .url(let url):
                        lines.append("curl -fsSL -o \(target) \(ShellQuote.quote(url))")
                    case .local(let path):
                        let contents = try readFile(path)
                        lines.append("base64 -d > \(target) <<'KILN_FILE_END'")
                        lines += contents.data.base64EncodedString(options: [.lineLength76Characters])
                            .split(separator: "\r\n").map(String.init)
                        lines.append("KILN_FILE_END")
                        lines.append("chmod \(contents.executable ? "0755" : "0644") \(target)")
                    }
                }
            }
        }
        if !appliance.post.base.isEmpty {
            lines.append("# kiln: post")
            lines += appliance.post.base
        }
        return lines
    }
}
