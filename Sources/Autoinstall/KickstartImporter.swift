import Appliance
import Foundation
import KilnSupport

/// Reads a kickstart back into an `Appliance`: what kiln writes, and the common hand-written forms
/// (`autopart`, `part --grow`, `%packages` with `-exclusions`, `%post`).
///
/// What a description cannot hold (`%pre`, `%post --nochroot`, unknown commands) is skipped and
/// named in `warnings`.
package struct KickstartImporter: Sendable {
    /// An imported appliance and what was left out.
    package struct Result: Sendable {
        package var appliance: Appliance
        /// `line N: ...` for each skipped part.
        package var warnings: [String]
    }

    package init() {}

    /// - Parameters:
    ///   - text: the kickstart.
    ///   - name: the appliance name when the kickstart has no kiln header (the file's base name).
    ///   - directory: where `%include` finds files named relatively (the kickstart's folder); nil
    ///     follows no include.
    /// - Throws: `AutoinstallError.invalidKickstart` for a line that cannot be split into words.
    package func read(_ text: String, name fallbackName: String, directory: String? = nil) throws(AutoinstallError)
        -> Result
    {
        var state = ImportState(fallbackName: fallbackName)
        var lines: [SourceLine] = []
        Self.flatten(text, file: nil, directory: directory, depth: 0, into: &lines, warnings: &state.warnings)
        var index = 0
        while index < lines.count {
            let (line, label) = (lines[index].text, lines[index].label)
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("# kiln: ") {
                state.header(String(trimmed.dropFirst("# kiln: ".count)))
                continue
            }
            if trimmed.hasPrefix("#") {
                state.comment(trimmed)
                continue
            }
            if trimmed.isEmpty { continue }
            let words = try Self.split(trimmed, line: label)
            guard let command = words.first else { continue }
            if command.hasPrefix("%") {
                // RHEL 5 and 6 sections may end at the next section instead of %end.
                var body: [String] = []
                while index < lines.count {
                    let next = lines[index].text.trimmingCharacters(in: .whitespaces)
                    if next == "%end" || next.hasPrefix("%end ") {
                        index += 1
                        break
                    }
                    if Self.opensSection(next) { break }
                    body.append(lines[index].text)
                    index += 1
                }
                state.section(words, body: body, line: label)
                continue
            }
            state.command(words, line: label)
        }
        return Result(appliance: state.finish(), warnings: state.warnings)
    }

    /// One line of the kickstart with `%include`s followed, and where it was written.
    struct SourceLine {
        var text: String
        /// `line 12`, or `line 3 of extra.ks` for an included file.
        var label: String
    }

    static let sectionNames: Set<String> = [
        "%packages", "%post", "%pre", "%pre-install", "%traceback", "%onerror", "%addon", "%anaconda",
    ]

    static func opensSection(_ trimmed: String) -> Bool {
        guard trimmed.hasPrefix("%") else { return false }
        let word = trimmed.prefix { $0 != " " && $0 != "\t" }
        return sectionNames.contains(String(word))
    }

    /// The lines of `text`, each `%include` (and `%ksappend`) of a file beside the kickstart
    /// replaced by that file's lines; one that cannot be followed is warned about and skipped.
    static func flatten(
        _ text: String, file: String?, directory: String?, depth: Int, into lines: inout [SourceLine],
        warnings: inout [String]
    ) {
        // By scalars: "\r\n" is one Character, so a Windows file would be one line otherwise.
        let raw = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(String.UnicodeScalarView(line.last == "\r" ? line.dropLast() : line[...]))
        }
        for (offset, line) in raw.enumerated() {
            let label = file.map { "line \(offset + 1) of \($0)" } ?? "line \(offset + 1)"
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("%include") || trimmed.hasPrefix("%ksappend") else {
                lines.append(SourceLine(text: line, label: label))
                continue
            }
            let words = (try? split(trimmed, line: label)) ?? []
            guard words.count == 2, ["%include", "%ksappend"].contains(words[0]) else {
                lines.append(SourceLine(text: line, label: label))
                continue
            }
            let target = words[1]
            guard let directory, !target.contains("://") else {
                warnings.append("\(label): \(words[0]) \(target) is not followed (not a file beside the kickstart)")
                continue
            }
            let path =
                target.hasPrefix("/")
                ? target
                : ((directory as NSString).appendingPathComponent(target) as NSString)
                    .standardizingPath
            guard depth < 8, let data = FileManager.default.contents(atPath: path) else {
                warnings.append(
                    "\(label): \(words[0]) \(target) is not followed: "
                        + (depth < 8 ? "no such file beside the kickstart" : "includes nested deeper than 8"))
                continue
            }
            flatten(
                String(decoding: data, as: UTF8.self), file: (target as NSString).lastPathComponent,
                directory: (path as NSString).deletingLastPathComponent, depth: depth + 1, into: &lines,
                warnings: &warnings)
        }
    }

    /// Splits a kickstart line into words as pykickstart's shlex does: spaces separate, single and
    /// double quotes group, a backslash escapes the next character outside single quotes.
    static func split(_ line: String, line label: String) throws(AutoinstallError) -> [String] {
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
            let number = Int(label.split(separator: " ").dropFirst().first ?? "")
            throw AutoinstallError(.invalidKickstart, "\(label): unterminated quote", line: number)
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
    /// A distribution named in a comment (`# CentOS 6 server`), the weakest hint of the OS.
    var commentOS: (OSName, String)?
    var rootHash: String?
    var rootPlain: String?
    var rootLocked = false
    var locale: String?
    var keyboard: String?
    var timezone: String?
    var users: [User] = []
    var plainPasswords: [String: String] = [:]
    var network: [NetworkInterface] = []
    var hostname: String?
    var kernelArgs: String?
    var console: SerialConsole?
    /// The machine kiln's own header names (`# kiln: arch=aarch64`).
    var arch: Architecture?
    var partitions: [Partition] = []
    var partitionLines: [String: String] = [:]
    var partitioned = false
    var biosBoot = false
    var esp = false
    var repos: [Repository] = []
    var installURL: (url: String, mirrorlist: Bool)?
    var packages: [String] = []
    var packageOptions = PackageOptions()
    var post: [String] = []
    var enable: [String] = []
    var disable: [String] = []
    /// Anaconda's defaults when the kickstart says nothing: enforcing, firewall on with SSH.
    var selinux: SELinuxMode = .enforcing
    var firewall = Firewall.default
    var end: EndAction?
    /// Whether the kickstart said, rather than left them to Anaconda's defaults.
    var selinuxGiven = false
    var firewallGiven = false

    init(fallbackName: String) {
        self.fallbackName = fallbackName
    }

    /// A hand-written kickstart for arm64 says so only in its URLs (`.../BaseOS/aarch64/os/`) or its
    /// console (`ttyAMA0`, the PL011 UART of arm64 boards).
    mutating func inferredArch() -> Architecture? {
        let urls =
            repos.flatMap { [$0.baseurl, $0.mirrorlist].compactMap { $0 } } + [installURL?.url].compactMap { $0 }
        let namesArm = urls.contains { $0.contains("aarch64") }
        let namesX86 = urls.contains { $0.contains("x86_64") }
        if namesArm && !namesX86 {
            warnings.append("the repos are aarch64's: the description says hardware.arch: aarch64")
            return .aarch64
        }
        if !namesX86, let console, console.device.hasPrefix("ttyAMA") {
            warnings.append(
                "the console is \(console.device), an arm64 UART: the description says hardware.arch: aarch64")
            return .aarch64
        }
        return nil
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
            case "arch": arch = Architecture(rawValue: parts[1]) ?? arch
            default: break
            }
        }
    }

    /// A comment naming a distribution and a release, such as `# Kickstart for CentOS 6`.
    mutating func comment(_ text: String) {
        // pykickstart's own header, `#version=RHEL8` or `#version=F38`, names the syntax's release.
        let compact = text.replacingOccurrences(of: " ", with: "")
        if compact.hasPrefix("#version=") {
            let value = compact.dropFirst("#version=".count)
            let os: OSName? = value.hasPrefix("RHEL") ? .rhel : value.hasPrefix("F") ? .fedora : nil
            let number = String(value.drop { $0.isLetter })
            if let os, OperatingSystem(name: os, version: number).isKnownRelease {
                commentOS = (os, number)
                return
            }
        }
        guard commentOS == nil else { return }
        let words = text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "." })
        if let found = Self.distribution(in: words.map(String.init)) { commentOS = found }
    }

    /// A distribution name followed (soon) by a release number, in words.
    static func distribution(in words: [String]) -> (OSName, String)? {
        let names: [(String, OSName)] = [
            ("rocky", .rocky), ("almalinux", .almalinux), ("alma", .almalinux), ("centos", .centos),
            ("rhel", .rhel), ("redhat", .rhel), ("fedora", .fedora), ("scientific", .sl), ("sl", .sl),
        ]
        for (at, word) in words.enumerated() {
            guard let os = names.first(where: { $0.0 == word })?.1 else { continue }
            let version = words[(at + 1)...].prefix(4).first { word in
                word.first?.isNumber == true
                    && OperatingSystem(name: os, version: String(word.prefix { $0.isNumber })).isKnownRelease
            }
            if let version { return (os, String(version.prefix { $0.isNumber })) }
        }
        return nil
    }

    /// A command's options: `--name=value` and `--name value` (unless a flag), and its other words.
    /// Options outside `known` are named in a warning: the description does not carry them.
    private mutating func options(
        _ words: ArraySlice<String>, flags: Set<String>, known: Set<String>, command: String, line: String
    ) -> (options: [String: String], positional: [String]) {
        var options: [String: String] = [:]
        var positional: [String] = []
        let items = Array(words)
        var index = 0
        while index < items.count {
            let word = items[index]
            index += 1
            guard word.hasPrefix("-") && word.count > 1 else {
                positional.append(word)
                continue
            }
            let name: String
            if let equals = word.firstIndex(of: "=") {
                name = String(word[..<equals])
                options[name] = String(word[word.index(after: equals)...])
            } else if !flags.contains(word), index < items.count, !items[index].hasPrefix("--") {
                name = word
                options[word] = items[index]
                index += 1
            } else {
                name = word
                options[word] = ""
            }
            if !known.contains(name) { warnings.append("\(line): \(command) \(name) is not imported") }
        }
        return (options, positional)
    }

    mutating func command(_ words: [String], line: String) {
        let rest = words.dropFirst()
        let command = words[0]
        func read(_ flags: Set<String> = [], known: Set<String>) -> ([String: String], [String]) {
            options(rest, flags: flags, known: known, command: command, line: line)
        }
        switch command {
        case "lang":
            let (_, positional) = read(known: [])
            locale = positional.first
        case "keyboard":
            let (opts, positional) = read(known: ["--vckeymap", "--xlayouts"])
            keyboard =
                opts["--vckeymap"] ?? opts["--xlayouts"]?.split(separator: ",").first.map(String.init)
                ?? positional.first
        case "timezone":
            let (opts, positional) = read(["--utc", "--isUtc", "--nontp"], known: ["--utc", "--isUtc"])
            timezone = positional.first ?? opts["--timezone"]
        case "rootpw":
            let (opts, positional) = read(
                ["--iscrypted", "--plaintext", "--lock", "--allow-ssh"],
                known: ["--iscrypted", "--plaintext", "--lock"])
            if opts["--lock"] != nil {
                // Anaconda locks the account whatever password it is given ("!!", "*", a hash).
                rootLocked = true
                if let given = positional.first, given.hasPrefix("$") {
                    warnings.append("\(line): rootpw --lock: the password given is dropped; root stays locked")
                }
                break
            }
            if opts["--iscrypted"] != nil { rootHash = positional.first } else { rootPlain = positional.first }
        case "user":
            let (opts, _) = read(
                ["--iscrypted", "--plaintext", "--lock"],
                known: ["--name", "--groups", "--password", "--iscrypted", "--plaintext"])
            guard let userName = opts["--name"] else {
                warnings.append("\(line): user without --name skipped")
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
            users.removeAll { $0.name == userName }
            users.append(user)
        case "sshkey":
            let (opts, positional) = read(known: ["--username"])
            guard let userName = opts["--username"], let key = positional.first else { break }
            if let index = users.firstIndex(where: { $0.name == userName }) {
                users[index].sshKeys.append(key)
            } else {
                warnings.append("\(line): sshkey for '\(userName)', who has no user line, skipped")
            }
        case "network":
            network(rest, line: line)
        case "bootloader":
            let (opts, _) = read(known: ["--append", "--location", "--timeout"])
            if let location = opts["--location"], location != "mbr" {
                warnings.append("\(line): bootloader --location=\(location) is not imported (kiln installs to the MBR)")
            }
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
            _ = read(known: [])
            partitioned = true
            partitions = []
            warnings.append("\(line): autopart: the description gets kiln's default layout ('/' growing)")
        case "url":
            let (opts, _) = read(known: ["--url", "--mirrorlist", "--metalink"])
            if let url = opts["--url"] {
                installURL = (url, false)
            } else if let list = opts["--mirrorlist"] ?? opts["--metalink"] {
                installURL = (list, true)
            }
        case "repo":
            let (opts, _) = read(
                ["--install", "--noverifyssl"], known: ["--name", "--baseurl", "--mirrorlist", "--cost", "--install"])
            guard let repoName = opts["--name"] else {
                warnings.append("\(line): repo without --name skipped")
                break
            }
            guard opts["--baseurl"] != nil || opts["--mirrorlist"] != nil else {
                // Anaconda takes such a repo from a .repo file in the installer; kiln cannot.
                warnings.append("\(line): repo '\(repoName)' has no --baseurl or --mirrorlist; skipped")
                break
            }
            repos.removeAll { $0.name == repoName }
            repos.append(
                Repository(
                    name: repoName, baseurl: opts["--baseurl"], mirrorlist: opts["--mirrorlist"],
                    ephemeral: opts["--install"] == nil, cost: opts["--cost"].flatMap { Int($0) }))
        case "services":
            let (opts, _) = read(known: ["--enabled", "--disabled"])
            enable += (opts["--enabled"] ?? "").split(separator: ",").map(String.init)
            disable += (opts["--disabled"] ?? "").split(separator: ",").map(String.init)
        case "selinux":
            let modes: Set<String> = ["--enforcing", "--permissive", "--disabled"]
            let (opts, _) = read(modes, known: modes)
            selinux = SELinuxMode.allCases.first { opts["--\($0.rawValue)"] != nil } ?? .enforcing
            selinuxGiven = true
        case "firewall":
            firewall(rest, line: line)
        case "reboot", "poweroff", "halt", "shutdown":
            _ = read(known: [])
            end = EndAction(rawValue: command)
        case "zerombr":
            partitioned = true
        case "clearpart":
            partitioned = true
            let (opts, _) = read(["--all", "--initlabel"], known: ["--all", "--initlabel", "--disklabel"])
            if opts["--all"] == nil {
                warnings.append("\(line): clearpart without --all is not imported (kiln clears the whole disk)")
            }
        case "text", "skipx", "install":
            _ = read(known: [])
        case "firstboot":
            let (opts, _) = read(
                ["--disabled", "--disable", "--enable", "--enabled", "--reconfig"], known: ["--disabled", "--disable"])
            if opts["--disabled"] == nil && opts["--disable"] == nil {
                warnings.append("\(line): firstboot is not imported (kiln turns it off)")
            }
        default:
            warnings.append("\(line): '\(command)' is not imported")
        }
    }

    private mutating func firewall(_ words: ArraySlice<String>, line: String) {
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
                warnings.append("\(line): firewall \(word) is not imported")
            }
        }
        firewall = result
        firewallGiven = true
    }

    /// `--name=value` as its two halves.
    private static func option(_ word: String) -> (String, String?) {
        guard let equals = word.firstIndex(of: "=") else { return (word, nil) }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }

    private mutating func network(_ words: ArraySlice<String>, line: String) {
        let (opts, _) = options(
            words, flags: ["--activate", "--nodefroute", "--noipv4", "--noipv6", "--nodns"],
            known: [
                "--bootproto", "--device", "--ip", "--netmask", "--gateway", "--nameserver", "--hostname", "--activate",
                "--onboot",
            ], command: "network", line: line)
        if let host = opts["--hostname"] { hostname = host }
        guard opts["--bootproto"] != nil || opts["--device"] != nil || opts["--ip"] != nil else { return }
        let device = opts["--device"].map { $0 == "link" ? "default" : $0 } ?? "default"
        network.removeAll { $0.interface == device }
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

    private mutating func partition(_ words: ArraySlice<String>, line: String) {
        guard let mount = words.first else { return }
        partitioned = true
        let (opts, _) = options(
            words.dropFirst(),
            flags: ["--grow", "--encrypted", "--asprimary", "--noformat", "--recommended", "--hibernation"],
            // --onpart and --usepart are named below, with why.
            known: [
                "--size", "--fstype", "--fsoptions", "--grow", "--encrypted", "--passphrase", "--onpart", "--usepart",
            ],
            command: "part \(mount)", line: line)
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
            warnings.append("\(line): partition '\(mount)' (LVM, RAID) is not imported")
            return
        }
        if opts["--onpart"] != nil || opts["--usepart"] != nil {
            // An existing partition has no size kiln could know; inventing one would be a guess.
            warnings.append("\(line): partition '\(mount)' on an existing partition (--onpart) is not imported")
            return
        }
        let size = opts["--size"].flatMap { Int64($0) } ?? 1024
        if opts["--size"] == nil { warnings.append("\(line): partition '\(mount)' has no --size; 1024 MiB used") }
        if let first = partitionLines[mount] {
            warnings.append("\(line): partition '\(mount)' was given before (\(first)); this line replaces it")
            partitions.removeAll { $0.mountPoint == mount }
        }
        partitionLines[mount] = line
        let fstype = opts["--fstype"].map { $0 == "efi" ? "vfat" : $0 } ?? (mount == "swap" ? "swap" : "ext4")
        guard let type = FilesystemType(rawValue: fstype) else {
            warnings.append("\(line): filesystem '\(fstype)' of \(mount) is not supported; ext4 used")
            partitions.append(
                Partition(mountPoint: mount, size: Size(mebibytes: size), type: .ext4, grow: opts["--grow"] != nil))
            return
        }
        var passphrase: String?
        if opts["--encrypted"] != nil {
            passphrase = opts["--passphrase"]
            if passphrase == nil { warnings.append("\(line): --encrypted without --passphrase: not encrypted") }
        }
        partitions.append(
            Partition(
                mountPoint: mount,
                size: Size(mebibytes: max(1, size)), type: type, options: opts["--fsoptions"], passphrase: passphrase,
                grow: opts["--grow"] != nil))
    }

    mutating func section(_ words: [String], body: [String], line: String) {
        switch words[0] {
        case "%packages":
            let (opts, _) = options(
                words.dropFirst(),
                flags: [
                    "--nocore", "--excludedocs", "--ignoremissing", "--exclude-weakdeps", "--excludeWeakdeps",
                    "--default", "--nobase",
                ],
                known: [
                    "--nocore", "--excludedocs", "--ignoremissing", "--exclude-weakdeps", "--excludeWeakdeps",
                    "--inst-langs", "--instLangs",
                ], command: "%packages", line: line)
            packageOptions.excludeDocs = opts["--excludedocs"] != nil
            packageOptions.noCore = opts["--nocore"] != nil
            packageOptions.excludeWeakDeps = opts["--exclude-weakdeps"] != nil || opts["--excludeWeakdeps"] != nil
            packageOptions.ignoreMissing = opts["--ignoremissing"] != nil
            packageOptions.instLangs = opts["--inst-langs"] ?? opts["--instLangs"]
            for entry in body {
                var item = entry.trimmingCharacters(in: .whitespaces)
                if let hash = item.firstIndex(of: "#") { item = String(item[..<hash]) }
                item = item.trimmingCharacters(in: .whitespaces)
                if item.isEmpty { continue }
                // Anaconda reads "@ group" as "@group".
                if item.hasPrefix("@") || item.hasPrefix("-@") {
                    let prefix = item.hasPrefix("-") ? "-@" : "@"
                    item = prefix + item.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
                }
                packages.append(item)
            }
        case "%post":
            let (opts, _) = options(
                words.dropFirst(), flags: ["--nochroot", "--erroronfail"], known: ["--interpreter", "--log"],
                command: "%post", line: line)
            if opts["--nochroot"] != nil {
                warnings.append("\(line): %post --nochroot is not imported")
                return
            }
            if let interpreter = opts["--interpreter"],
                !["/bin/sh", "/bin/bash", "/usr/bin/bash", "/usr/bin/sh"].contains(interpreter)
            {
                warnings.append("\(line): %post --interpreter=\(interpreter) is not imported")
                return
            }
            if opts["--log"] != nil { warnings.append("\(line): %post --log is not imported") }
            postBody(body, line: line)
        default:
            warnings.append("\(line): section \(words[0]) is not imported")
        }
    }

    private mutating func postBody(_ body: [String], line: String) {
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
        /// The command being read between `cat > /tmp/kiln-post <<'KILN_POST_END'` and its end.
        var command: [String]?
        var separateCommands: [String] = []
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
                if mode == "files" { warnings.append("\(line): files embedded by kiln are not imported") }
                continue
            }
            if mode == "post" {
                if var lines = command {
                    if entry == "KILN_POST_END" {
                        separateCommands.append(lines.joined(separator: "\n"))
                        command = nil
                    } else {
                        lines.append(entry)
                        command = lines
                    }
                } else if entry == "cat > /tmp/kiln-post <<'KILN_POST_END'" {
                    command = []
                } else if !entry.hasPrefix("/bin/sh /tmp/kiln-post ") && entry != "rm -f /tmp/kiln-post" {
                    commands.append(entry)
                }
            }
            if mode == "sshkey", entry.hasPrefix("printf '%s\\n' "), let user = currentUser,
                let index = users.firstIndex(where: { $0.name == user }),
                let words = try? KickstartImporter.split(entry, line: line), words.count >= 3
            {
                users[index].sshKeys.append(words[2])
            }
        }
        post += separateCommands
        if !commands.isEmpty { post.append(commands.joined(separator: "\n")) }
    }

    /// `$basearch` and `$releasever` (yum's) as kiln's variables.
    private static func kilnVariables(_ url: String) -> String {
        url.replacingOccurrences(of: "$basearch", with: "#BASE_ARCH#")
            .replacingOccurrences(of: "${basearch}", with: "#BASE_ARCH#")
            .replacingOccurrences(of: "$releasever", with: "#OS_VERSION#")
            .replacingOccurrences(of: "${releasever}", with: "#OS_VERSION#")
    }

    mutating func finish() -> Appliance {
        let applianceName = name ?? fallbackName
        var os: OperatingSystem
        if let osName, let osVersion {
            os = OperatingSystem(name: osName, version: osVersion)
        } else if let (guessed, version, source) = guessOS() {
            os = OperatingSystem(name: guessed, version: version)
            warnings.append("the OS is guessed from \(source): \(guessed.rawValue) \(version)")
        } else {
            os = OperatingSystem(name: .fedora, version: "40")
            warnings.append(
                "no url, repo or comment names the OS; fedora 40 assumed (set os.name and os.version)")
        }
        if rootLocked {
            os.passwordHash = nil
        } else if let rootHash {
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
        if !partitioned {
            hardware.partitionsByInstaller = true
            warnings.append(
                "the kickstart has no partitioning (Anaconda asks): the description says partitions: installer, "
                    + "and images built from it get kiln's default layout")
        }
        if !partitions.isEmpty { hardware.partitions = partitions }
        hardware.firmware = biosBoot && esp ? .hybrid : biosBoot ? .bios : esp ? .uefi : .hybrid
        if let machine = arch ?? inferredArch() {
            hardware.arch = machine
            // arm64 machines have UEFI only; a BIOS boot partition there is a leftover.
            if machine == .aarch64 { hardware.firmware = .uefi }
        }
        var allRepos = repos.map { repo in
            var copy = repo
            copy.baseurl = repo.baseurl.map(Self.kilnVariables)
            copy.mirrorlist = repo.mirrorlist.map(Self.kilnVariables)
            return copy
        }
        if let install = installURL,
            !repos.contains(where: { $0.baseurl == install.url || $0.mirrorlist == install.url })
        {
            let url = Self.kilnVariables(install.url)
            allRepos.insert(
                Repository(
                    name: "install", baseurl: install.mirrorlist ? nil : url,
                    mirrorlist: install.mirrorlist ? url : nil, ephemeral: true, cost: 0), at: 0)
        }
        if !selinuxGiven {
            warnings.append("the kickstart has no selinux line; the description says enforcing, Anaconda's default")
        }
        if !firewallGiven {
            warnings.append(
                "the kickstart has no firewall line; the description says on with ssh, Anaconda's default")
        }
        if end == nil {
            warnings.append("the kickstart has no reboot, poweroff or halt (Anaconda would wait); end: reboot used")
        }
        let network =
            self.network.count == 1 && self.network[0] == NetworkInterface(interface: "default") ? [] : self.network
        var appliance = Appliance(
            name: applianceName, summary: summary, version: version, release: release, os: os, hardware: hardware,
            packages: packages, packageOptions: packageOptions, repos: allRepos, defaultRepos: installURL == nil,
            post: PostCommands(base: post),
            hostname: hostname, users: users, services: Services(enable: enable, disable: disable), network: network,
            kernelArgs: kernelArgs, console: console, selinux: selinux, firewall: firewall, end: end ?? .reboot)
        if appliance.hostname == appliance.effectiveHostnameWithoutOverride { appliance.hostname = nil }
        return appliance
    }

    /// The distribution named in the install source or repo URLs (`.../rocky/9/...`), else in a
    /// comment; and where it was found.
    private func guessOS() -> (OSName, String, String)? {
        let urls = ([installURL?.url] + repos.map { $0.baseurl ?? $0.mirrorlist }).compactMap { $0 }
        for url in urls {
            let words = url.lowercased().split(whereSeparator: { "/?&=-_.:".contains($0) }).map(String.init)
            if let (os, version) = Self.distribution(in: words) { return (os, version, "the URL \(url)") }
            // EPEL-style paths: .../el/6/... or .../epel-7/...
            if let at = words.firstIndex(where: { $0 == "el" || $0 == "epel" || $0 == "rhel" }), at + 1 < words.count,
                let major = Int(words[at + 1]), (5...10).contains(major)
            {
                return (.centos, String(major), "the URL \(url)")
            }
        }
        if let (os, version) = commentOS { return (os, version, "a comment") }
        return nil
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
