import Appliance
import Foundation
import KilnSupport
import Packages

/// Writes the debian-installer preseed for a Debian or Ubuntu appliance.
///
/// Pure apart from its inputs: the host's apt sources (used for the mirror when the description
/// names no repos) and local `files` are given to it.
package struct PreseedRenderer: Sendable {
    /// Overrides the description's `end`.
    package var endAction: EndAction?
    package var readFile: FileReader
    /// The host's apt sources (the command layer reads them with the Packages module).
    package var hostSources: [ArchiveSource]

    package init(endAction: EndAction? = nil, readFile: FileReader = .disk, hostSources: [ArchiveSource]) {
        self.endAction = endAction
        self.readFile = readFile
        self.hostSources = hostSources
    }

    /// The preseed text.
    /// - Throws: `AutoinstallError` for an RPM-family description, an unreadable file, or when no
    ///   mirror is known.
    package func render(_ appliance: Appliance) throws(AutoinstallError) -> String {
        guard appliance.os.name.family == .debian, let codename = appliance.os.codename else {
            throw AutoinstallError(
                .wrongFamily,
                "\(appliance.name) is a \(appliance.os.name.rawValue) appliance: "
                    + "preseeds are for debian and ubuntu (use kiln kickstart)"
            )
        }
        var out = ["#_preseed_V1"] + Header.lines(appliance, generator: "Preseed")
        out.append("")
        out.append("# Locale and keyboard")
        out.append("d-i debian-installer/locale string \(appliance.os.locale)")
        out.append("d-i keyboard-configuration/xkb-keymap select \(appliance.os.keyboard)")
        out.append("")
        out.append("# Network")
        out += networkLines(appliance)
        out.append("")
        out.append("# Mirror")
        out += try mirrorLines(appliance, codename: codename)
        out.append("")
        out.append("# Clock")
        out.append("d-i clock-setup/utc boolean true")
        out.append("d-i time/zone string \(appliance.os.timezone)")
        out.append("d-i clock-setup/ntp boolean true")
        out.append("")
        out.append("# Accounts (users are made in late_command)")
        out.append("d-i passwd/root-login boolean true")
        out.append("d-i passwd/root-password-crypted password \(appliance.os.passwordHash ?? "!")")
        out.append("d-i passwd/make-user boolean false")
        out.append("")
        out.append("# Partitioning")
        out += partitionLines(appliance)
        out.append("")
        out.append("# Packages")
        out.append("tasksel tasksel/first multiselect")
        var packages = appliance.packages
        if appliance.users.contains(where: \.sudo) && !packages.contains("sudo") { packages.append("sudo") }
        if !packages.isEmpty { out.append("d-i pkgsel/include string \(packages.joined(separator: " "))") }
        out.append("d-i pkgsel/upgrade select none")
        out.append("popularity-contest popularity-contest/participate boolean false")
        out.append("")
        out.append("# Boot loader")
        out.append("d-i grub-installer/only_debian boolean true")
        out.append("d-i grub-installer/with_other_os boolean false")
        out.append("d-i grub-installer/bootdev string default")
        if appliance.hardware.firmware != .bios {
            out.append("d-i grub-installer/force-efi-extra-removable boolean true")
        }
        let kernelArgs = Header.kernelArguments(appliance)
        if !kernelArgs.isEmpty { out.append("d-i debian-installer/add-kernel-opts string \(kernelArgs)") }
        let late = try lateCommands(appliance)
        if !late.isEmpty {
            out.append("")
            out.append("# Users, files and post commands, in the target")
            out.append("d-i preseed/late_command string \\")
            out.append(late.map { "    " + $0 }.joined(separator: "; \\\n"))
        }
        out.append("")
        out.append("# End")
        out.append("d-i finish-install/reboot_in_progress note")
        switch endAction ?? appliance.end {
        case .reboot: break
        case .poweroff, .shutdown: out.append("d-i debian-installer/exit/poweroff boolean true")
        case .halt: out.append("d-i debian-installer/exit/halt boolean true")
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func networkLines(_ appliance: Appliance) -> [String] {
        var lines: [String] = []
        let first = appliance.network.first ?? NetworkInterface(interface: "default")
        lines.append("d-i netcfg/choose_interface select \(first.isDefault ? "auto" : first.interface)")
        if let config = first.staticAddress {
            lines.append("d-i netcfg/disable_autoconfig boolean true")
            lines.append("d-i netcfg/get_ipaddress string \(config.address)")
            lines.append("d-i netcfg/get_netmask string \(config.netmask)")
            lines.append("d-i netcfg/get_gateway string \(config.gateway ?? "none")")
            lines.append("d-i netcfg/get_nameservers string \(config.dns.joined(separator: " "))")
            lines.append("d-i netcfg/confirm_static boolean true")
        }
        let hostname = appliance.effectiveHostname
        let short = hostname.split(separator: ".").first.map(String.init) ?? hostname
        let domain = hostname.split(separator: ".").dropFirst().joined(separator: ".")
        lines.append("d-i netcfg/get_hostname string \(short)")
        lines.append("d-i netcfg/get_domain string" + (domain.isEmpty ? "" : " \(domain)"))
        lines.append("d-i netcfg/hostname string \(short)")
        return lines
    }

    /// Protocol, host and directory of an archive URL.
    static func splitURL(_ url: String) -> (scheme: String, host: String, directory: String)? {
        guard let range = url.range(of: "://") else { return nil }
        let scheme = String(url[..<range.lowerBound])
        let rest = url[range.upperBound...]
        let host = String(rest.prefix { $0 != "/" })
        var directory = String(rest.dropFirst(host.count))
        if directory.isEmpty { directory = "/" }
        if directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        guard ["http", "https", "ftp"].contains(scheme), !host.isEmpty else { return nil }
        return (scheme, host, directory)
    }

    private func mirrorLines(_ appliance: Appliance, codename: String) throws(AutoinstallError) -> [String] {
        var lines: [String] = []
        let mirrorURL: String
        var suite = codename
        var components: [String]
        var extraRepos = appliance.repos
        var security: (scheme: String, host: String, directory: String)?
        if let first = appliance.repos.first, let url = first.baseurl {
            mirrorURL = url
            suite = first.suite ?? codename
            components = first.components
            extraRepos.removeFirst()
        } else {
            // A Debian host's suites move to the description's release, as `kiln build` moves them
            // (`bookworm-security` becomes `trixie-security`).
            let sources = appliance.os.name == .ubuntu ? hostSources : AptSources.retarget(hostSources, to: codename)
            var candidates = sources.filter { !$0.suite.hasSuffix("-security") }
            if appliance.os.name == .ubuntu {
                // A Debian host's mirror has no Ubuntu release; only a host source of this release will do.
                candidates = candidates.filter { $0.suite == codename }
                guard !candidates.isEmpty else {
                    throw AutoinstallError(
                        .noMirror,
                        "\(appliance.name) is ubuntu \(appliance.os.version) (\(codename)) and names no repos; the "
                            + "host's apt sources have no \(codename) suite: add a repo with an Ubuntu archive's "
                            + "baseurl")
                }
            }
            guard let host = candidates.first(where: { $0.suite == codename }) ?? candidates.first else {
                throw AutoinstallError(
                    .noMirror,
                    "\(appliance.name) names no repos and the host has no apt sources "
                        + "(/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list): add a repo with a baseurl"
                )
            }
            mirrorURL = host.uri
            components = host.components
            if let securitySource = sources.first(where: { $0.suite == "\(codename)-security" }) {
                security = Self.splitURL(securitySource.uri)
            }
        }
        guard let mirror = Self.splitURL(mirrorURL) else {
            throw AutoinstallError(
                .unsupported, "debian-installer needs an http, https or ftp mirror, not \(mirrorURL)")
        }
        lines.append("d-i mirror/country string manual")
        lines.append("d-i mirror/protocol string \(mirror.scheme)")
        lines.append("d-i mirror/\(mirror.scheme)/hostname string \(mirror.host)")
        lines.append("d-i mirror/\(mirror.scheme)/directory string \(mirror.directory)")
        lines.append("d-i mirror/\(mirror.scheme)/proxy string")
        lines.append("d-i mirror/suite string \(suite)")
        lines.append("d-i apt-setup/cdrom/set-first boolean false")
        lines.append("d-i apt-setup/disable-cdrom-entries boolean true")
        if appliance.os.name == .ubuntu {
            // Ubuntu's installer turns on all of its components unless told otherwise.
            if components.isEmpty { components = ["main", "restricted", "universe", "multiverse"] }
            for optional in ["restricted", "universe", "multiverse"] {
                lines.append("d-i apt-setup/\(optional) boolean \(components.contains(optional))")
            }
        } else {
            if components.isEmpty { components = ["main"] }
            for optional in ["contrib", "non-free", "non-free-firmware"] {
                lines.append("d-i apt-setup/\(optional) boolean \(components.contains(optional))")
            }
        }
        if let security {
            lines.append("d-i apt-setup/services-select multiselect security, updates")
            lines.append("d-i apt-setup/security_host string \(security.host)")
            lines.append("d-i apt-setup/security_path string \(security.directory)")
        } else {
            lines.append("d-i apt-setup/services-select multiselect")
        }
        for (index, repo) in extraRepos.enumerated() {
            guard let url = repo.baseurl else { continue }
            let words = [url, repo.suite ?? codename] + (repo.components.isEmpty ? ["main"] : repo.components)
            lines.append("d-i apt-setup/local\(index)/repository string \(words.joined(separator: " "))")
            lines.append("d-i apt-setup/local\(index)/comment string \(repo.name)")
            lines.append("d-i apt-setup/local\(index)/source boolean false")
            if let key = repo.key, key.contains("://") {
                lines.append("d-i apt-setup/local\(index)/key string \(key)")
            }
        }
        return lines
    }

    private func partitionLines(_ appliance: Appliance) -> [String] {
        if appliance.hardware.partitionsByInstaller { return ["# partitions: installer (debian-installer asks)"] }
        let partitions = appliance.hardware.partitions
        let encrypted = partitions.contains { $0.passphrase != nil }
        var recipe: [String] = ["kiln ::"]
        let firmware = appliance.hardware.firmware
        if firmware != .uefi {
            recipe.append("1 1 1 free $gptonly{ } $primary{ } $bios_boot{ } method{ biosgrub } .")
        }
        if firmware != .bios && !partitions.contains(where: { $0.mountPoint == "/boot/efi" }) {
            recipe.append("600 600 600 fat32 $gptonly{ } $primary{ } method{ efi } format{ } .")
        }
        if encrypted && !partitions.contains(where: { $0.mountPoint == "/boot" }) {
            recipe.append(
                "1024 1024 1024 ext4 $primary{ } $bootable{ } method{ format } format{ } use_filesystem{ } "
                    + "filesystem{ ext4 } mountpoint{ /boot } ."
            )
        }
        for partition in partitions {
            let size = partition.size.mebibytes
            let maximum = partition.grow ? "-1" : "\(size)"
            // In LVM on LUKS, /boot and the ESP stay outside the encrypted volume group.
            let inLVM = encrypted && partition.mountPoint != "/boot" && partition.mountPoint != "/boot/efi"
            var words = ["\(size) \(size) \(maximum)"]
            let place = inLVM ? "$lvmok{ } lv_name{ \(Self.lvName(partition.mountPoint)) }" : "$primary{ }"
            switch partition.type {
            case .swap:
                words += ["linux-swap", place, "method{ swap } format{ }"]
            case .vfat where partition.mountPoint == "/boot/efi":
                words += ["fat32", "$primary{ } method{ efi } format{ }"]
            default:
                let fs = partition.type == .vfat ? "fat32" : partition.type.rawValue
                words += [fs, place, "method{ format } format{ } use_filesystem{ } filesystem{ \(fs) }"]
                words.append("mountpoint{ \(partition.mountPoint) }")
                for option in (partition.options ?? "").split(separator: ",") {
                    words.append("options/\(option){ \(option) }")
                }
            }
            recipe.append(words.joined(separator: " ") + " .")
        }
        var lines = [
            "d-i partman-auto/method string \(encrypted ? "crypto" : "regular")",
            "d-i partman-partitioning/choose_label select gpt",
            "d-i partman-partitioning/default_label string gpt",
            "d-i partman-auto/choose_recipe select kiln",
            "d-i partman-auto/expert_recipe string \\",
        ]
        lines.append(recipe.map { "    " + $0 }.joined(separator: " \\\n"))
        if encrypted, let passphrase = partitions.compactMap(\.passphrase).first {
            lines += [
                "d-i partman-auto-lvm/guided_size string max",
                "d-i partman-auto-lvm/new_vg_name string kiln",
                "d-i partman-crypto/passphrase password \(passphrase)",
                "d-i partman-crypto/passphrase-again password \(passphrase)",
                "d-i partman-crypto/weak_passphrase boolean true",
                "d-i partman-crypto/confirm boolean true",
                "d-i partman-auto-crypto/erase_disks boolean false",
                "d-i partman-lvm/device_remove_lvm boolean true",
                "d-i partman-lvm/confirm boolean true",
                "d-i partman-lvm/confirm_nooverwrite boolean true",
            ]
        }
        if !partitions.contains(where: \.isSwap) {
            lines.append("d-i partman-basicfilesystems/no_swap boolean false")
        }
        if firmware != .bios { lines.append("d-i partman-efi/non_efi_system boolean true") }
        lines += [
            "d-i partman-partitioning/confirm_write_new_label boolean true",
            "d-i partman/choose_partition select finish",
            "d-i partman/confirm boolean true",
            "d-i partman/confirm_nooverwrite boolean true",
        ]
        return lines
    }

    /// `text` as a sed basic regular expression that matches only itself.
    static func basicRegexLiteral(_ text: String) -> String {
        var result = ""
        for character in text {
            if ".*[]^$\\".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }

    static func lvName(_ mountPoint: String) -> String {
        if mountPoint == "/" { return "root" }
        if mountPoint == "swap" { return "swap" }
        return mountPoint.split(separator: "/").joined(separator: "_").replacingOccurrences(of: ".", with: "_")
    }

    /// Commands for `late_command`, one per element; every value is quoted for the installer's
    /// shell except `post` commands, which run as written inside the target.
    private func lateCommands(_ appliance: Appliance) throws(AutoinstallError) -> [String] {
        var commands: [String] = []
        for user in appliance.users {
            var add = "in-target useradd --create-home --shell /bin/bash"
            if !user.groups.isEmpty { add += " --groups \(user.groups.joined(separator: ","))" }
            if let hash = user.passwordHash { add += " --password \(ShellQuote.quote(hash))" }
            commands.append(add + " \(user.name)")
            if !user.sshKeys.isEmpty {
                let dir = "/target/home/\(user.name)/.ssh"
                commands.append("mkdir -p \(dir)")
                commands.append(
                    "printf '%s\\n' " + user.sshKeys.map(ShellQuote.quote).joined(separator: " ")
                        + " > \(dir)/authorized_keys"
                )
                commands.append("chmod 0700 \(dir)")
                commands.append("chmod 0600 \(dir)/authorized_keys")
                commands.append("in-target chown -R \(user.name):\(user.name) /home/\(user.name)/.ssh")
            }
            if let rule = user.sudoersLine {
                let path = "/target/etc/sudoers.d/\(user.name)"
                commands.append("printf '%s\\n' \(ShellQuote.quote(rule)) > \(path)")
                commands.append("chmod 0440 \(path)")
            }
        }
        for interface in appliance.network.dropFirst() {
            var stanza = ["auto \(interface.interface)"]
            if let config = interface.staticAddress {
                stanza.append("iface \(interface.interface) inet static")
                stanza.append("    address \(config.address)/\(config.prefixLength)")
                if let gateway = config.gateway { stanza.append("    gateway \(gateway)") }
                if !config.dns.isEmpty { stanza.append("    dns-nameservers \(config.dns.joined(separator: " "))") }
            } else {
                stanza.append("iface \(interface.interface) inet dhcp")
            }
            let path = "/target/etc/network/interfaces.d/\(interface.interface)"
            commands.append("printf '%s\\n' \(stanza.map(ShellQuote.quote).joined(separator: " ")) > \(path)")
        }
        // debian-installer writes every archive it used into sources.list; ephemeral ones leave it.
        for repo in appliance.repos where repo.ephemeral {
            guard let url = repo.baseurl else { continue }
            let trimmed = url.hasSuffix("/") ? String(url.dropLast()) : url
            let script = "\\|^deb \(Self.basicRegexLiteral(trimmed))/\\? |d"
            commands.append("in-target sed -i \(ShellQuote.quote(script)) /etc/apt/sources.list")
        }
        for service in appliance.services.enable { commands.append("in-target systemctl enable \(service)") }
        for service in appliance.services.disable { commands.append("in-target systemctl disable \(service)") }
        var embedded = EmbeddedFiles()
        for group in appliance.files {
            commands.append("mkdir -p \(ShellQuote.quote("/target" + group.target))")
            for source in group.sources {
                let path = "/target" + (group.target as NSString).appendingPathComponent(source.fileName)
                let target = ShellQuote.quote(path)
                if source.fileName.contains("/") {
                    commands.append("mkdir -p \(ShellQuote.quote((path as NSString).deletingLastPathComponent))")
                }
                switch source {
                case .url(let url):
                    commands.append("wget -q -O \(target) \(ShellQuote.quote(url))")
                case .local(let path, _):
                    let contents = try embedded.read(path, with: readFile)
                    let encoded = contents.data.base64EncodedString()
                    commands.append("printf '%s' '\(encoded)' > /target/tmp/kiln-file")
                    commands.append(
                        "in-target sh -c 'base64 -d /tmp/kiln-file > \"$1\"' sh "
                            + ShellQuote.quote((group.target as NSString).appendingPathComponent(source.fileName))
                    )
                    commands.append("chmod \(contents.executable ? "0755" : "0644") \(target)")
                    commands.append("rm -f /target/tmp/kiln-file")
                }
            }
        }
        // Each post command in its own shell; the first that fails ends late_command, named.
        for (number, command) in appliance.post.base.enumerated() {
            let failed = "|| { \(PostScript.failure(number + 1, command)); exit 1; }"
            if command.contains("\n") {
                // A debconf value is one line: several lines travel as base64 into the target.
                let encoded = Data(command.utf8).base64EncodedString()
                commands.append("printf '%s' '\(encoded)' > /target/tmp/kiln-post")
                commands.append("in-target sh -c 'base64 -d /tmp/kiln-post > /tmp/kiln-post.sh'")
                commands.append("in-target sh /tmp/kiln-post.sh \(failed)")
                commands.append("rm -f /target/tmp/kiln-post /target/tmp/kiln-post.sh")
            } else {
                commands.append("in-target sh -c \(ShellQuote.quote(command)) \(failed)")
            }
        }
        return commands
    }
}
