import Appliance
import Foundation

/// Reads a kickstart back into an `Appliance`: what kiln writes, and the common hand-written forms
/// (`autopart`, `part --grow`, `%packages` with `-exclusions`, `%post`).
///
/// What a description cannot hold (`%pre`, `%post --nochroot`, unknown commands) is skipped and
/// named in `warnings`.
public struct KickstartImporter: Sendable {
    /// An imported appliance and what was left out.
    public struct Result: Sendable {
        public var appliance: Appliance
        /// `line N: ...` for each skipped part.
        public var warnings: [String]
    }

    public init() {}

    /// - Parameters:
    ///   - text: the kickstart.
    ///   - name: the appliance name when the kickstart has no kiln header (the file's base name).
    /// - Throws: `AutoinstallError.invalidKickstart` for a line that cannot be split into words.
    public func read(_ text: String, name fallbackName: String) throws(AutoinstallError) -> Result {
        var state = ImportState(fallbackName: fallbackName)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        var index = 0
        while index < lines.count {
            let number = index + 1
            let line = lines[index]
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("# kiln: ") {
                state.header(String(trimmed.dropFirst("# kiln: ".count)))
                continue
            }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let words = try Self.split(trimmed, line: number)
            guard let command = words.first else { continue }
            if command.hasPrefix("%") {
                var body: [String] = []
                while index < lines.count, lines[index].trimmingCharacters(in: .whitespaces) != "%end" {
                    body.append(lines[index])
                    index += 1
                }
                index += 1
                state.section(words, body: body, line: number)
                continue
            }
            state.command(words, line: number)
        }
        return Result(appliance: state.finish(), warnings: state.warnings)
    }

    /// Splits a kickstart line into words as pykickstart's shlex does: spaces separate, single and
    /// double quotes group, a backslash escapes the next character outside single quotes.
    static func split(_ line: String, line number: Int) throws(AutoinstallError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\" && open == "\"" {
                    escaped = true
                } else {
                    current.append(character)
                }
                continue
            }
            switch character {
            case " ", "\t":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            case "\"", "'":
                quote = character
                inWord = true
            case "\\":
                escaped = true
                inWord = true
            case "#" where !inWord:
                if inWord { words.append(current) }
                return words
            default:
                current.append(character)
                inWord = true
            }
        }
        if quote != nil {
            throw AutoinstallError(.invalidKickstart, "line \(number): unterminated quote", line: number)
        }
        if inWord { words.append(current) }
        return words
    }
}

/// What the importer has read so far.
private struct ImportState {
    let fallbackName: String
    var warnings: [String] = []
    var name: String?
    var summary: String?
    var version = 1
    var release = 0
    var osName: OSName?
    var osVersion: String?
    var rootHash: String?
    var rootPlain: String?
    var locale: String?
    var keyboard: String?
    var timezone: String?
    var users: [User] = []
    var plainPasswords: [String: String] = [:]
    var network: [NetworkInterface] = []
    var hostname: String?
    var kernelArgs: String?
    var console: SerialConsole?
    var partitions: [Partition] = []
    var biosBoot = false
    var esp = false
    var repos: [Repository] = []
    var installURL: (url: String, mirrorlist: Bool)?
    var packages: [String] = []
    var post: [String] = []
    var enable: [String] = []
    var disable: [String] = []
    /// Anaconda's defaults when the kickstart says nothing: enforcing, firewall on with SSH.
    var selinux: SELinuxMode = .enforcing
    var firewall = Firewall.default
    var end: EndAction?

    init(fallbackName: String) {
        self.fallbackName = fallbackName
    }

    mutating func header(_ text: String) {
        if text.hasPrefix("summary=") {
            summary = String(text.dropFirst("summary=".count))
            return
        }
        if text.hasPrefix("os=") {
            let words = text.dropFirst(3).split(separator: " ")
            if let first = words.first { osName = OSName(rawValue: String(first)) }
            if words.count > 1 { osVersion = String(words[1]) }
            return
        }
        for pair in text.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "name": name = parts[1]
            case "version": version = Int(parts[1]) ?? version
            case "release": release = Int(parts[1]) ?? release
            default: break
            }
        }
    }

    /// `--name=value` and `--name value` options, and the words that are not options.
    private func options(_ words: ArraySlice<String>, flags: Set<String>) -> (
        options: [String: String], positional: [String]
    ) {
        var options: [String: String] = [:]
        var positional: [String] = []
        var iterator = Array(words)
        var index = 0
        while index < iterator.count {
            let word = iterator[index]
            index += 1
            guard word.hasPrefix("--") else {
                positional.append(word)
                continue
            }
            if let equals = word.firstIndex(of: "=") {
                options[String(word[..<equals])] = String(word[word.index(after: equals)...])
            } else if !flags.contains(word), index < iterator.count, !iterator[index].hasPrefix("--") {
                options[word] = iterator[index]
                index += 1
            } else {
                options[word] = ""
            }
        }
        iterator.removeAll()
        return (options, positional)
    }

    mutating func command(_ words: [String], line: Int) {
        let rest = words.dropFirst()
        switch words[0] {
        case "lang":
            locale = rest.first
        case "keyboard":
            let (opts, positional) = options(rest, flags: [])
            keyboard =
                opts["--vckeymap"] ?? opts["--xlayouts"]?.split(separator: ",").first.map(String.init)
                ?? positional.first
        case "timezone":
            let (_, positional) = options(rest, flags: ["--utc", "--isUtc", "--nontp"])
            timezone = positional.first
        case "rootpw":
            let (opts, positional) = options(rest, flags: ["--iscrypted", "--plaintext", "--lock", "--allow-ssh"])
            if opts["--lock"] != nil && positional.isEmpty { break }
            if opts["--iscrypted"] != nil { rootHash = positional.first } else { rootPlain = positional.first }
        case "user":
            let (opts, _) = options(rest, flags: ["--iscrypted", "--plaintext", "--lock"])
            guard let userName = opts["--name"] else {
                warnings.append("line \(line): user without --name skipped")
                break
            }
            var user = User(name: userName)
            user.groups = (opts["--groups"] ?? "").split(separator: ",").map(String.init)
            if let password = opts["--password"] {
                if opts["--iscrypted"] != nil {
                    user.passwordHash = password
                } else {
                    plainPasswords[userName] = password
                }
            }
            users.append(user)
        case "sshkey":
            let (opts, positional) = options(rest, flags: [])
            guard let userName = opts["--username"], let key = positional.first else { break }
            if let index = users.firstIndex(where: { $0.name == userName }) {
                users[index].sshKeys.append(key)
            } else {
                warnings.append("line \(line): sshkey for '\(userName)', who has no user line, skipped")
            }
        case "network":
            network(rest, line: line)
        case "bootloader":
            let (opts, _) = options(
                rest, flags: ["--md5pass", "--iscrypted", "--nombr", "--leavebootorder", "--noefi"])
            var args: [String] = []
            for word in (opts["--append"] ?? "").split(separator: " ").map(String.init) {
                if word == "console=tty0" { continue }
                if word.hasPrefix("console=ttyS") || word.hasPrefix("console=ttyAMA") {
                    let value = word.dropFirst("console=".count).split(separator: ",")
                    let speed = value.count > 1 ? Int(value[1].prefix { $0.isNumber }) ?? 115_200 : 115_200
                    console = SerialConsole(device: String(value[0]), speed: speed)
                    continue
                }
                args.append(word)
            }
            kernelArgs = args.isEmpty ? nil : args.joined(separator: " ")
        case "part", "partition":
            partition(rest, line: line)
        case "autopart":
            partitions = []
        case "url":
            let (opts, _) = options(rest, flags: ["--noverifyssl"])
            if let url = opts["--url"] {
                installURL = (url, false)
            } else if let list = opts["--mirrorlist"] {
                installURL = (list, true)
            }
        case "repo":
            let (opts, _) = options(rest, flags: ["--install", "--noverifyssl"])
            guard let repoName = opts["--name"] else {
                warnings.append("line \(line): repo without --name skipped")
                break
            }
            repos.append(
                Repository(
                    name: repoName, baseurl: opts["--baseurl"], mirrorlist: opts["--mirrorlist"],
                    ephemeral: opts["--install"] == nil, cost: opts["--cost"].flatMap { Int($0) }))
        case "services":
            let (opts, _) = options(rest, flags: [])
            enable += (opts["--enabled"] ?? "").split(separator: ",").map(String.init)
            disable += (opts["--disabled"] ?? "").split(separator: ",").map(String.init)
        case "selinux":
            let (opts, _) = options(rest, flags: ["--enforcing", "--permissive", "--disabled"])
            selinux = SELinuxMode.allCases.first { opts["--\($0.rawValue)"] != nil } ?? .enforcing
        case "firewall":
            firewall(rest, line: line)
        case "reboot", "poweroff", "halt", "shutdown":
            end = EndAction(rawValue: words[0])
            if rest.contains(where: { $0 == "--eject" || $0 == "--kexec" }) {
                warnings.append("line \(line): \(words[0]) options are not imported")
            }
        case "text", "graphical", "cmdline", "skipx", "firstboot", "zerombr", "clearpart", "reqpart", "ignoredisk", "install", "eula", "logging", "authselect",
            "auth", "authconfig", "timesource", "bootloader-location":
            break
        default:
            warnings.append("line \(line): '\(words[0])' is not imported")
        }
    }

    private mutating func firewall(_ words: ArraySlice<String>, line: Int) {
        var result = Firewall(enabled: true)
        for word in words {
            let (name, value) = Self.option(word)
            switch name {
            case "--enabled", "--enable": result.enabled = true
            case "--disabled", "--disable": result.enabled = false
            case "--ssh", "--http", "--smtp", "--ftp", "--telnet": result.services.append(String(name.dropFirst(2)))
            case "--service":
                result.services += (value ?? "").split(separator: ",").map(String.init)
            case "--port":
                result.ports += (value ?? "").split(separator: ",").map { $0.replacingOccurrences(of: ":", with: "/") }
            default:
                warnings.append("line \(line): firewall \(word) is not imported")
            }
        }
        firewall = result
    }

    /// `--name=value` as its two halves.
    private static func option(_ word: String) -> (String, String?) {
        guard let equals = word.firstIndex(of: "=") else { return (word, nil) }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }

    private mutating func network(_ words: ArraySlice<String>, line: Int) {
        let (opts, _) = options(words, flags: ["--activate", "--nodefroute", "--noipv4", "--noipv6", "--nodns"])
        if let host = opts["--hostname"] { hostname = host }
        guard opts["--bootproto"] != nil || opts["--device"] != nil || opts["--ip"] != nil else { return }
        let device = opts["--device"].map { $0 == "link" ? "default" : $0 } ?? "default"
        if opts["--bootproto"] == "static", let ip = opts["--ip"] {
            let prefix = opts["--netmask"].map(Self.prefixLength) ?? 24
            let dns = (opts["--nameserver"] ?? "").split(separator: ",").map(String.init)
            network.append(
                NetworkInterface(
                    interface: device,
                    staticAddress: StaticAddress(
                        address: ip, prefixLength: prefix, gateway: opts["--gateway"], dns: dns)))
        } else {
            network.append(NetworkInterface(interface: device))
        }
    }

    static func prefixLength(_ netmask: String) -> Int {
        netmask.split(separator: ".").compactMap { UInt8($0) }.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    private mutating func partition(_ words: ArraySlice<String>, line: Int) {
        guard let mount = words.first else { return }
        let (opts, _) = options(
            words.dropFirst(),
            flags: ["--grow", "--encrypted", "--asprimary", "--noformat", "--recommended", "--hibernation"])
        if mount == "biosboot" || opts["--fstype"] == "biosboot" {
            biosBoot = true
            return
        }
        // kiln writes its own ESP as exactly this line; anything else is the description's.
        if mount == "/boot/efi", words.dropFirst().first == "--fstype=efi", opts["--size"] == "600" {
            esp = true
            return
        }
        if mount == "/boot/efi" { esp = true }
        guard mount == "swap" || mount.hasPrefix("/") else {
            warnings.append("line \(line): partition '\(mount)' (LVM, RAID) is not imported")
            return
        }
        let size = opts["--size"].flatMap { Int64($0) } ?? 1024
        let fstype = opts["--fstype"].map { $0 == "efi" ? "vfat" : $0 } ?? (mount == "swap" ? "swap" : "ext4")
        guard let type = FilesystemType(rawValue: fstype) else {
            warnings.append("line \(line): filesystem '\(fstype)' of \(mount) is not supported; ext4 used")
            partitions.append(
                Partition(mountPoint: mount, size: Size(mebibytes: size), type: .ext4, grow: opts["--grow"] != nil))
            return
        }
        var passphrase: String?
        if opts["--encrypted"] != nil {
            passphrase = opts["--passphrase"]
            if passphrase == nil { warnings.append("line \(line): --encrypted without --passphrase: not encrypted") }
        }
        partitions.append(
            Partition(
                mountPoint: mount,
                size: Size(mebibytes: max(1, size)), type: type, options: opts["--fsoptions"], passphrase: passphrase,
                grow: opts["--grow"] != nil))
    }

    mutating func section(_ words: [String], body: [String], line: Int) {
        switch words[0] {
        case "%packages":
            for entry in body {
                let item = entry.trimmingCharacters(in: .whitespaces)
                if item.isEmpty || item.hasPrefix("#") { continue }
                packages.append(item)
            }
        case "%post":
            let (opts, _) = options(words.dropFirst(), flags: ["--nochroot", "--erroronfail"])
            if opts["--nochroot"] != nil {
                warnings.append("line \(line): %post --nochroot is not imported")
                return
            }
            if let interpreter = opts["--interpreter"],
                !["/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/sh"].contains(interpreter)
            {
                warnings.append("line \(line): %post --interpreter=\(interpreter) is not imported")
                return
            }
            postBody(body, line: line)
        default:
            warnings.append("line \(line): section \(words[0]) is not imported")
        }
    }

    private mutating func postBody(_ body: [String], line: Int) {
        guard body.contains(where: { $0.hasPrefix("# kiln: ") }) else {
            var lines = body
            while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
            while lines.first?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeFirst() }
            if !lines.isEmpty { post.append(lines.joined(separator: "\n")) }
            return
        }
        var mode = ""
        var currentUser: String?
        var commands: [String] = []
        for entry in body {
            if entry.hasPrefix("# kiln: ") {
                let marker = entry.dropFirst("# kiln: ".count).split(separator: " ")
                mode = marker.first.map(String.init) ?? ""
                currentUser = marker.count > 1 ? String(marker[1]) : nil
                if mode == "sudo" || mode == "sudo-password", marker.count > 1,
                    let index = users.firstIndex(where: { $0.name == marker[1] })
                {
                    users[index].sudo = true
                    users[index].sudoAsksPassword = mode == "sudo-password"
                }
                if mode == "repo", marker.count > 1, let index = repos.firstIndex(where: { $0.name == marker[1] }) {
                    repos[index].ephemeral = false
                }
                if mode == "files" { warnings.append("line \(line): files embedded by kiln are not imported") }
                continue
            }
            if mode == "post" { commands.append(entry) }
            if mode == "sshkey", entry.hasPrefix("printf '%s\\n' "), let user = currentUser,
                let index = users.firstIndex(where: { $0.name == user }),
                let words = try? KickstartImporter.split(entry, line: line), words.count >= 3
            {
                users[index].sshKeys.append(words[2])
            }
        }
        if !commands.isEmpty { post.append(commands.joined(separator: "\n")) }
    }

    mutating func finish() -> Appliance {
        let applianceName = name ?? fallbackName
        let (guessedOS, guessedVersion) = guessOS()
        var os = OperatingSystem(name: osName ?? guessedOS, version: osVersion ?? guessedVersion)
        if let rootHash {
            os.passwordHash = rootHash
        } else if let rootPlain {
            os.passwordHash = PasswordHash.sha512(rootPlain, context: "\(applianceName)\u{0}root")
        }
        if let locale { os.locale = locale }
        if let keyboard { os.keyboard = keyboard }
        if let timezone { os.timezone = timezone }
        for (userName, password) in plainPasswords {
            if let index = users.firstIndex(where: { $0.name == userName }) {
                users[index].passwordHash = PasswordHash.sha512(password, context: "\(applianceName)\u{0}\(userName)")
            }
        }
        var hardware = Hardware()
        if !partitions.isEmpty { hardware.partitions = partitions }
        hardware.firmware = biosBoot && esp ? .hybrid : biosBoot ? .bios : esp ? .uefi : .hybrid
        var allRepos = repos
        if let install = installURL,
            !repos.contains(where: { $0.baseurl == install.url || $0.mirrorlist == install.url })
        {
            allRepos.insert(
                Repository(
                    name: "install", baseurl: install.mirrorlist ? nil : install.url,
                    mirrorlist: install.mirrorlist ? install.url : nil, ephemeral: true, cost: 0), at: 0)
        }
        let network =
            self.network.count == 1 && self.network[0] == NetworkInterface(interface: "default") ? [] : self.network
        var appliance = Appliance(
            name: applianceName, summary: summary, version: version, release: release, os: os, hardware: hardware,
            packages: packages, repos: allRepos, defaultRepos: installURL == nil, post: PostCommands(base: post),
            hostname: hostname, users: users, services: Services(enable: enable, disable: disable), network: network,
            kernelArgs: kernelArgs, console: console, selinux: selinux, firewall: firewall, end: end ?? .reboot)
        if appliance.hostname == appliance.effectiveHostnameWithoutOverride { appliance.hostname = nil }
        return appliance
    }

    /// The distribution named in the install source or repo URLs (`.../rocky/9/...`).
    private func guessOS() -> (OSName, String) {
        let urls = ([installURL?.url] + repos.map { $0.baseurl ?? $0.mirrorlist }).compactMap { $0 }
        for url in urls {
            let parts = url.lowercased().split(whereSeparator: { "/?&=-_.".contains($0) })
            for os in [OSName.rocky, .almalinux, .centos, .rhel, .fedora] {
                guard let at = parts.firstIndex(where: { $0 == os.rawValue || ($0 == "alma" && os == .almalinux) })
                else { continue }
                let version = parts[at...].first { Int($0) != nil }.map(String.init)
                return (os, version ?? (os == .fedora ? "40" : "9"))
            }
        }
        return (.fedora, "40")
    }
}

extension Appliance {
    /// The host name kiln would give without `hostname` set.
    fileprivate var effectiveHostnameWithoutOverride: String {
        var copy = self
        copy.hostname = nil
        return copy.effectiveHostname
    }
}
