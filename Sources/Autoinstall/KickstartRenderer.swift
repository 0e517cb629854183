import Appliance
import Foundation
import KilnSupport

/// Writes the kickstart for an RPM-family appliance (Fedora, RHEL, CentOS, Rocky, AlmaLinux).
///
/// Pure: the description in, text out (local `files` are read through `readFile`). The same
/// description always gives the same bytes.
package struct KickstartRenderer: Sendable {
    /// Overrides the description's `end`.
    package var endAction: EndAction?
    package var readFile: FileReader

    package init(endAction: EndAction? = nil, readFile: FileReader = .disk) {
        self.endAction = endAction
        self.readFile = readFile
    }

    /// The pykickstart syntax version for a release (`F40`, `RHEL9`), as `ksvalidator -v` takes it.
    package static func syntaxVersion(for os: OperatingSystem) -> String {
        let major = os.majorVersion ?? 0
        switch os.name {
        case .fedora: return "F\(major)"
        default: return "RHEL\(major)"
        }
    }

    /// The kickstart text.
    /// - Throws: `AutoinstallError` for a Debian-family description, an unreadable file, or what
    ///   the release cannot do at all.
    package func render(_ appliance: Appliance) throws(AutoinstallError) -> String {
        try renderWithWarnings(appliance).text
    }

    /// The kickstart text, and what the release's syntax could not say (each left out, named).
    /// - Throws: `AutoinstallError` for a Debian-family description, an unreadable file, a release
    ///   kiln does not know, or what the release cannot do at all.
    package func renderWithWarnings(_ appliance: Appliance) throws(AutoinstallError) -> (
        text: String, warnings: [String]
    ) {
        guard appliance.os.name.family == .redHat else {
            throw AutoinstallError(
                .wrongFamily,
                "\(appliance.name) is a \(appliance.os.name.rawValue) appliance: "
                    + "kickstarts are for fedora, rhel, centos, rocky, almalinux and sl (use kiln preseed)"
            )
        }
        guard appliance.os.isKnownRelease, let major = appliance.os.majorVersion else {
            throw AutoinstallError(
                .unsupported, "\(appliance.os.name.rawValue) \(appliance.os.version) is not a release kiln knows")
        }
        var render = KickstartLines(
            appliance: appliance, syntax: KickstartSyntax(fedora: appliance.os.name == .fedora, major: major))
        let text = try render.text(endAction: endAction ?? appliance.end, readFile: readFile)
        return (text, render.warnings)
    }

    static func sortedByCost(_ repos: [Repository]) -> [Repository] {
        repos.enumerated().sorted { a, b in
            (a.element.cost ?? 1000, a.offset) < (b.element.cost ?? 1000, b.offset)
        }.map(\.element)
    }
}

/// What a release's kickstart syntax has, as pykickstart's handler for it reads it.
struct KickstartSyntax {
    let fedora: Bool
    let major: Int

    private func since(fedora: Int, rhel: Int) -> Bool { major >= (self.fedora ? fedora : rhel) }

    /// `keyboard --vckeymap= --xlayouts=` (before: `keyboard LAYOUT`).
    var keyboardOptions: Bool { since(fedora: 18, rhel: 7) }
    var sshkey: Bool { since(fedora: 22, rhel: 8) }
    var networkActivate: Bool { since(fedora: 16, rhel: 6) }
    var clearpartDisklabel: Bool { since(fedora: 21, rhel: 7) }
    var repoInstall: Bool { since(fedora: 21, rhel: 7) }
    var repoCost: Bool { since(fedora: 11, rhel: 6) }
    /// `rootpw --lock` without a password.
    var rootpwLockAlone: Bool { since(fedora: 18, rhel: 7) }
    /// `rootpw --lock` at all.
    var rootpwLock: Bool { since(fedora: 11, rhel: 6) }
    var firewallService: Bool { since(fedora: 11, rhel: 6) }
    var bootloaderTimeout: Bool { since(fedora: 11, rhel: 6) }
    var urlMirrorlist: Bool { since(fedora: 18, rhel: 7) }
    var packagesNoCore: Bool { since(fedora: 21, rhel: 7) }
    /// `--exclude-weakdeps` (F32, RHEL 9), `--excludeWeakdeps` before (F24, RHEL 8), nil before that.
    var excludeWeakDeps: String? {
        since(fedora: 32, rhel: 9) ? "--exclude-weakdeps" : since(fedora: 24, rhel: 8) ? "--excludeWeakdeps" : nil
    }
    /// `--inst-langs` (F32, RHEL 9), `--instLangs` before (F11, RHEL 6), nil on RHEL 5.
    var instLangs: String? {
        since(fedora: 32, rhel: 9) ? "--inst-langs" : since(fedora: 11, rhel: 6) ? "--instLangs" : nil
    }
    /// Installers for aarch64: RHEL 7 (and its rebuilds) and Fedora 21 were the first.
    var aarch64: Bool { since(fedora: 21, rhel: 7) }
    /// RHEL 8 dropped btrfs.
    var btrfs: Bool { fedora || major < 8 }
}

/// One rendering: the lines, and the warnings about what the release could not say.
private struct KickstartLines {
    let appliance: Appliance
    let syntax: KickstartSyntax
    var warnings: [String] = []

    init(appliance: Appliance, syntax: KickstartSyntax) {
        self.appliance = appliance
        self.syntax = syntax
    }

    private var release: String { "\(appliance.os.name.rawValue) \(appliance.os.version)" }

    mutating func text(endAction: EndAction, readFile: FileReader) throws(AutoinstallError) -> String {
        if appliance.hardware.arch == .aarch64 && !syntax.aarch64 {
            throw AutoinstallError(
                .unsupported,
                "\(release) has no installer for aarch64 (RHEL 7 and Fedora 21 were the first); "
                    + "use a later release or hardware.arch: x86_64")
        }
        var out = Header.lines(appliance, generator: "Kickstart")
        out.append("text")
        out.append("lang \(appliance.os.locale)")
        if syntax.keyboardOptions {
            out.append("keyboard --vckeymap=\(appliance.os.keyboard) --xlayouts=\(appliance.os.keyboard)")
        } else {
            out.append("keyboard \(appliance.os.keyboard)")
        }
        out.append("timezone \(appliance.os.timezone) --utc")
        if let hash = appliance.os.passwordHash {
            out.append("rootpw --iscrypted \(hash)")
        } else if syntax.rootpwLockAlone {
            out.append("rootpw --lock")
        } else {
            // A "!!" hash is a locked password, as passwd -l writes it.
            out.append(syntax.rootpwLock ? "rootpw --iscrypted --lock !!" : "rootpw --iscrypted !!")
        }
        for user in appliance.users {
            var line = "user --name=\(user.name)"
            if !user.groups.isEmpty { line += " --groups=\(user.groups.joined(separator: ","))" }
            if let hash = user.passwordHash { line += " --iscrypted --password=\(hash)" }
            out.append(line)
            // pykickstart takes one sshkey per user (and none before F22/RHEL 8); %post adds the others.
            if syntax.sshkey, let key = user.sshKeys.first {
                out.append("sshkey --username=\(user.name) \"\(key)\"")
            }
        }
        out += networkLines()
        var bootloader = "bootloader --location=mbr"
        if syntax.bootloaderTimeout { bootloader += " --timeout=1" }
        let append = Header.kernelArguments(appliance)
        if !append.isEmpty { bootloader += " --append=\"\(append)\"" }
        out.append(bootloader)
        out += try diskLines()
        out += repoLines()
        out.append("selinux --\(appliance.selinux.rawValue)")
        out += firewallLines()
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
        out.append((["%packages"] + packageOptions()).joined(separator: " "))
        out += appliance.packages
        out.append("%end")
        out.append("")
        out.append("%post --erroronfail")
        out += try postLines(readFile: readFile)
        out.append("%end")
        return out.joined(separator: "\n") + "\n"
    }

    /// `%packages` options in the release's spelling; one it lacks is named in a warning.
    private mutating func packageOptions() -> [String] {
        let options = appliance.packageOptions
        var words: [String] = []
        if options.excludeDocs { words.append("--excludedocs") }
        if options.noCore {
            if syntax.packagesNoCore {
                words.append("--nocore")
            } else {
                warnings.append("package option nocore: a \(release) kickstart has no %packages --nocore; left out")
            }
        }
        if options.excludeWeakDeps {
            if let spelling = syntax.excludeWeakDeps {
                words.append(spelling)
            } else {
                warnings.append(
                    "package option exclude-weakdeps: a \(release) kickstart has no weak dependencies to exclude; left out"
                )
            }
        }
        if options.ignoreMissing { words.append("--ignoremissing") }
        if let langs = options.instLangs {
            if let spelling = syntax.instLangs {
                words.append("\(spelling)=\(langs)")
            } else {
                warnings.append(
                    "package option inst-langs: a \(release) kickstart has no %packages --instLangs; left out")
            }
        }
        return words
    }

    private mutating func firewallLines() -> [String] {
        let firewall = appliance.firewall
        guard firewall.enabled else { return ["firewall --disabled"] }
        var line = "firewall --enabled"
        var ports = firewall.ports.map { $0.replacingOccurrences(of: "/", with: ":") }
        if syntax.firewallService {
            if !firewall.services.isEmpty { line += " --service=\(firewall.services.joined(separator: ","))" }
        } else {
            // Before --service, the firewall command knew a few services by flag and ports by number.
            let flags = ["ssh", "http", "smtp", "ftp", "telnet"]
            let knownPorts = ["https": "443:tcp", "dns": "53:udp", "ntp": "123:udp", "imap": "143:tcp"]
            for service in firewall.services {
                if flags.contains(service) {
                    line += " --\(service)"
                } else if let port = knownPorts[service] {
                    ports.append(port)
                } else {
                    warnings.append(
                        "firewall service '\(service)' cannot be named in a \(release) kickstart; give its port "
                            + "in firewall.ports")
                }
            }
        }
        for port in ports { line += " --port=\(port)" }
        return [line]
    }
    private func networkLines() -> [String] {
        var lines: [String] = []
        let interfaces = appliance.network.isEmpty ? [NetworkInterface(interface: "default")] : appliance.network
        let activate = syntax.networkActivate ? " --activate" : ""
        for interface in interfaces {
            let device = interface.isDefault ? "link" : interface.interface
            guard let config = interface.staticAddress else {
                lines.append("network --bootproto=dhcp --device=\(device)\(activate) --onboot=on")
                continue
            }
            var line =
                "network --bootproto=static --device=\(device) --ip=\(config.address) --netmask=\(config.netmask)"
            if let gateway = config.gateway { line += " --gateway=\(gateway)" }
            if !config.dns.isEmpty { line += " --nameserver=\(config.dns.joined(separator: ","))" }
            lines.append(line + activate + " --onboot=on")
        }
        lines.append("network --hostname=\(appliance.effectiveHostname)")
        return lines
    }

    private func diskLines() throws(AutoinstallError) -> [String] {
        // Anaconda asks, as it would for any kickstart without partitioning.
        if appliance.hardware.partitionsByInstaller { return [] }
        var lines = ["zerombr", "clearpart --all --initlabel" + (syntax.clearpartDisklabel ? " --disklabel=gpt" : "")]
        let firmware = appliance.hardware.firmware
        let hasESP = appliance.hardware.partitions.contains { $0.mountPoint == "/boot/efi" }
        if firmware != .uefi { lines.append("part biosboot --fstype=biosboot --size=1") }
        if firmware != .bios && !hasESP { lines.append("part /boot/efi --fstype=efi --size=600") }
        for partition in appliance.hardware.partitions {
            if partition.type == .btrfs && !syntax.btrfs {
                throw AutoinstallError(
                    .unsupported,
                    "partition '\(partition.mountPoint)' is btrfs, which \(release) cannot install (use xfs or ext4)")
            }
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
    private mutating func repoLines() -> [String] {
        let repos = KickstartRenderer.sortedByCost(appliance.repos)
        var lines: [String] = []
        if !appliance.defaultRepos, let first = repos.first {
            if let url = first.baseurl {
                lines.append("url --url=\(url)")
            } else if let list = first.mirrorlist {
                if syntax.urlMirrorlist {
                    lines.append("url --mirrorlist=\(list)")
                } else if let url = repos.lazy.compactMap(\.baseurl).first {
                    lines.append("url --url=\(url)")
                } else {
                    warnings.append(
                        "repo '\(first.name)': a \(release) kickstart installs only from a baseurl, not a mirrorlist; "
                            + "no install source written")
                }
            }
        }
        for repo in repos {
            var line = "repo --name=\(repo.name)"
            if let url = repo.baseurl { line += " --baseurl=\(url)" }
            if let list = repo.mirrorlist { line += " --mirrorlist=\(list)" }
            if let cost = repo.cost {
                if syntax.repoCost {
                    line += " --cost=\(cost)"
                } else {
                    warnings.append("repo '\(repo.name)': a \(release) kickstart has no repo costs; cost left out")
                }
            }
            if !repo.ephemeral && syntax.repoInstall { line += " --install" }
            lines.append(line)
        }
        return lines
    }

    private func postLines(readFile: FileReader) throws(AutoinstallError) -> [String] {
        var lines: [String] = []
        for user in appliance.users {
            guard let rule = user.sudoersLine else { continue }
            let path = ShellQuote.quote("/etc/sudoers.d/\(user.name)")
            lines.append("# kiln: sudo\(user.sudoAsksPassword ? "-password" : "") \(user.name)")
            lines.append("printf '%s\\n' \(ShellQuote.quote(rule)) > \(path)")
            lines.append("chmod 0440 \(path)")
        }
        // Keys the sshkey command did not take: all of them before F22/RHEL 8, else all but the first.
        let inlineKeys = syntax.sshkey ? 1 : 0
        for user in appliance.users where user.sshKeys.count > inlineKeys {
            let dir = "/home/\(user.name)/.ssh"
            lines.append("# kiln: sshkey \(user.name)")
            lines.append("install -d -m 0700 -o \(user.name) -g \(user.name) \(dir)")
            for key in user.sshKeys.dropFirst(inlineKeys) {
                lines.append("printf '%s\\n' \(ShellQuote.quote(key)) >> \(dir)/authorized_keys")
            }
            lines.append("chown \(user.name):\(user.name) \(dir)/authorized_keys")
            lines.append("chmod 0600 \(dir)/authorized_keys")
        }
        if !appliance.files.isEmpty {
            lines.append("# kiln: files")
            var embedded = EmbeddedFiles()
            for group in appliance.files {
                lines.append("mkdir -p \(ShellQuote.quote(group.target))")
                for source in group.sources {
                    let path = (group.target as NSString).appendingPathComponent(source.fileName)
                    let target = ShellQuote.quote(path)
                    if source.fileName.contains("/") {
                        lines.append("mkdir -p \(ShellQuote.quote((path as NSString).deletingLastPathComponent))")
                    }
                    switch source {
                    case .url(let url):
                        lines.append("curl -fsSL -o \(target) \(ShellQuote.quote(url))")
                    case .local(let path, _):
                        let contents = try embedded.read(path, with: readFile)
                        lines.append("base64 -d > \(target) <<'KILN_FILE_END'")
                        lines += contents.data.base64EncodedString(options: [.lineLength76Characters])
                            .split(separator: "\r\n").map(String.init)
                        lines.append("KILN_FILE_END")
                        lines.append("chmod \(contents.executable ? "0755" : "0644") \(target)")
                    }
                }
            }
        }
        if !syntax.repoInstall {
            // Before repo --install, a repo stays in the target only through a file in yum.repos.d.
            for repo in appliance.repos where !repo.ephemeral {
                let path = ShellQuote.quote("/etc/yum.repos.d/\(repo.name).repo")
                var fields = ["[\(repo.name)]", "name=\(repo.name)"]
                if let url = repo.baseurl { fields.append("baseurl=\(url)") }
                if let list = repo.mirrorlist { fields.append("mirrorlist=\(list)") }
                if let cost = repo.cost { fields.append("cost=\(cost)") }
                fields.append("enabled=1")
                lines.append("# kiln: repo \(repo.name)")
                lines.append("printf '%s\\n' \(fields.map(ShellQuote.quote).joined(separator: " ")) > \(path)")
            }
        }
        if !appliance.post.base.isEmpty {
            // Each command in its own shell, as BoxGrinder ran them and as builds do: no cd or
            // variable carries over, and the first that fails stops the install, named.
            lines.append("# kiln: post")
            for (number, command) in appliance.post.base.enumerated() {
                lines.append("cat > /tmp/kiln-post <<'\(PostScript.delimiter)'")
                lines += command.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                lines.append(PostScript.delimiter)
                lines.append("/bin/sh /tmp/kiln-post || { \(PostScript.failure(number + 1, command)); exit 1; }")
            }
            lines.append("rm -f /tmp/kiln-post")
        }
        return lines
    }
}
