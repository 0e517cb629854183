/// The shapes of values that reach kickstarts, preseeds and the target system. They are strict so
/// that no value but a `post` command ever needs a shell to read it.
enum Validate {
    private static func all(_ text: String, _ allowed: (Unicode.Scalar) -> Bool) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy(allowed)
    }

    private static func alnum(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
    }

    private static func startsAlnum(_ text: String) -> Bool {
        text.unicodeScalars.first.map(alnum) ?? false
    }

    static func isApplianceName(_ text: String) -> Bool {
        startsAlnum(text) && text.count <= 128 && all(text) { alnum($0) || "-_.".unicodeScalars.contains($0) }
    }

    static func isVariableName(_ text: String) -> Bool {
        all(text) { alnum($0) || $0 == "_" }
    }

    static func isVersion(_ text: String) -> Bool {
        all(text) { alnum($0) || "._-".unicodeScalars.contains($0) }
    }

    /// One line, without a trailing backslash (debconf would join the next line to it).
    static func isOneLine(_ text: String) -> Bool {
        !text.hasSuffix("\\") && !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    static func isLocale(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "_.@-".unicodeScalars.contains($0) }
    }

    static func isTimezone(_ text: String) -> Bool {
        startsAlnum(text) && !text.contains("..") && all(text) { alnum($0) || "_+-/".unicodeScalars.contains($0) }
    }

    static func isKeyboard(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "_-".unicodeScalars.contains($0) }
    }

    /// Debian and RPM names, `@group` (RPM comps groups may hold spaces), `-excluded` (`-@group` too),
    /// globs.
    static func isPackage(_ text: String) -> Bool {
        if text.hasPrefix("@") || text.hasPrefix("-@") {
            let group = text.drop { $0 == "-" || $0 == "@" || $0 == "^" }
            return startsAlnum(String(group)) && !group.hasSuffix(" ")
                && all(String(group)) { alnum($0) || "._+-: ".unicodeScalars.contains($0) }
        }
        let name = text.hasPrefix("-") ? String(text.dropFirst()) : text
        return (startsAlnum(name) || name.hasPrefix("*"))
            && all(name) { alnum($0) || "._+:~*-".unicodeScalars.contains($0) }
    }

    static func isRepoName(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "._+-".unicodeScalars.contains($0) }
    }

    /// http, https, ftp or file URLs without spaces, quotes or shell characters.
    static func isURL(_ text: String) -> Bool {
        let schemes = ["http://", "https://", "ftp://", "file:///"]
        guard let scheme = schemes.first(where: text.hasPrefix), text.count > scheme.count else { return false }
        return all(text) { c in
            alnum(c) || "-._~:/?#[]@!&()*+,;=%".unicodeScalars.contains(c)
        } && !text.contains("`") && !text.contains("$")
    }

    static func isSuite(_ text: String) -> Bool {
        startsAlnum(text) && !text.contains("..") && all(text) { alnum($0) || "._/-".unicodeScalars.contains($0) }
    }

    static func isComponent(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "._-".unicodeScalars.contains($0) }
    }

    /// A local path: no spaces, quotes or shell characters.
    static func isSafePath(_ text: String) -> Bool {
        all(text) { alnum($0) || "._/+@,=-".unicodeScalars.contains($0) }
    }

    /// A `files` entry: a path, or a shell glob (`*`, `?`, `[...]`).
    static func isFileEntry(_ text: String) -> Bool {
        all(text) { alnum($0) || "._/+@,=-*?[]".unicodeScalars.contains($0) }
    }

    static func isAbsolutePath(_ text: String) -> Bool {
        text.hasPrefix("/") && isSafePath(text) && !text.split(separator: "/").contains("..")
    }

    static func isMountPoint(_ text: String) -> Bool {
        text == "swap" || (isAbsolutePath(text) && (text == "/" || !text.hasSuffix("/")) && !text.contains("//"))
    }

    static func isMountOptions(_ text: String) -> Bool {
        all(text) { alnum($0) || "_=,.:/-".unicodeScalars.contains($0) }
    }

    /// Printable, without the quotes and backslashes that kickstart and debconf would read.
    static func isPassphrase(_ text: String) -> Bool {
        text.count >= 8 && all(text) { $0.value >= 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "\\" && $0 != "'" }
    }

    static func isHostname(_ text: String) -> Bool {
        guard text.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let label = String(label)
            return label.count <= 63 && startsAlnum(label) && !label.hasSuffix("-")
                && all(label) { alnum($0) || $0 == "-" }
        }
    }

    static func isUserName(_ text: String) -> Bool {
        guard text.count <= 32, let first = text.unicodeScalars.first, ("a"..."z").contains(first) || first == "_"
        else { return false }
        return all(text) { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    static func isService(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "@._:-".unicodeScalars.contains($0) }
    }

    /// `en_US`, `en_US,de_DE`, `en:cs` (Anaconda takes either separator).
    static func isLanguageList(_ text: String) -> Bool {
        startsAlnum(text) && all(text) { alnum($0) || "_.,:@-".unicodeScalars.contains($0) }
    }

    static func isFirewallService(_ text: String) -> Bool {
        startsAlnum(text) && text.count <= 64 && all(text) { alnum($0) || "._-".unicodeScalars.contains($0) }
    }

    /// `8080/tcp`, `53/udp`, or a range `6000-6010/tcp`.
    static func isPort(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, ["tcp", "udp"].contains(parts[1]) else { return false }
        let bounds = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count) else { return false }
        let numbers = bounds.compactMap { $0.allSatisfy(\.isNumber) && $0.count <= 5 ? Int($0) : nil }
        return numbers.count == bounds.count && numbers.allSatisfy { (1...65535).contains($0) }
            && (numbers.count == 1 || numbers[0] < numbers[1])
    }

    static func isInterface(_ text: String) -> Bool {
        text.count <= 15 && startsAlnum(text) && all(text) { alnum($0) || "_.:-".unicodeScalars.contains($0) }
    }

    static func isConsoleDevice(_ text: String) -> Bool {
        text.hasPrefix("tty") && text.count > 3 && all(text) { alnum($0) }
    }

    static func isKernelArgs(_ text: String) -> Bool {
        all(text) { alnum($0) || " _.,:=/+@-".unicodeScalars.contains($0) }
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && (Int(part) ?? 256) <= 255
            }
    }

    static func isIPAddress(_ text: String) -> Bool {
        if isIPv4(text) { return true }
        return text.contains(":") && text.count <= 45
            && all(text) {
                ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0) || $0 == ":"
            }
    }

    /// `TYPE BASE64 [COMMENT]` with a known key type; the comment without quotes or backslashes.
    static func isSSHKey(_ text: String) -> Bool {
        let fields = text.split(separator: " ", maxSplits: 2)
        guard fields.count >= 2 else { return false }
        let type = String(fields[0])
        let known = type.hasPrefix("ssh-") || type.hasPrefix("ecdsa-sha2-") || type.hasPrefix("sk-")
        guard known, all(type, { alnum($0) || "-@.".unicodeScalars.contains($0) }) else { return false }
        guard all(String(fields[1]), { alnum($0) || "+/=".unicodeScalars.contains($0) }) else { return false }
        if fields.count == 3 {
            return all(String(fields[2])) {
                $0.value >= 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "\\" && $0 != "'"
            }
        }
        return true
    }

    /// Long or odd values shortened for messages.
    static func shown(_ text: String) -> String {
        let printable = String(text.unicodeScalars.map { $0.value < 0x20 ? "?" : Character($0) })
        return printable.count > 60 ? String(printable.prefix(57)) + "..." : printable
    }

    /// Why a value was refused, by what it is.
    static func explanation(_ what: String) -> String {
        switch what {
        case "name": return "may hold only letters, digits, '-', '_' and '.'"
        case "summary": return "must be one line, not ending in a backslash"
        case "package name": return "is not a package name (letters, digits, '.', '_', '+', '-'; '@group' for RPM)"
        case "repo name": return "may hold only letters, digits, '.', '_', '+' and '-'"
        case "baseurl", "mirrorlist": return "is not an http, https, ftp or file URL without spaces or shell characters"
        case "hostname": return "is not a host name (letters, digits and '-' in dot-separated labels)"
        case "user name", "group": return "must be lowercase letters, digits, '_' and '-', starting with a letter"
        case "ssh key": return "is not an OpenSSH public key line (TYPE BASE64 [COMMENT], no quotes in the comment)"
        case "service": return "is not a systemd unit name"
        case "interface": return "is not an interface name (or 'default')"
        case "kernel_args": return "may hold only letters, digits, spaces and _.,:=/+@-"
        case "passphrase": return "must be at least 8 printable characters without quotes or backslashes"
        case "mount point": return "must be 'swap' or an absolute path of letters, digits and ._+@-"
        case "files target": return "must be an absolute directory of letters, digits and ._+@,=-"
        case "file": return "must be a URL, or a path or glob of letters, digits and ._/+@,=-*?[]"
        case "key": return "must be a URL or a path of letters, digits and ._/+@,=-"
        case "gateway": return "is not an IPv4 address"
        case "firewall service": return "is not a firewalld service name (letters, digits, '.', '_', '-')"
        case "firewall port": return "must be a port and protocol, like 8080/tcp or 6000-6010/udp"
        case "dns server": return "is not an IP address"
        default: return "has characters that are not allowed here"
        }
    }
}

extension OperatingSystem {
    private static let debianCodenames = [
        "6": "squeeze", "7": "wheezy", "8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye",
        "12": "bookworm", "13": "trixie", "14": "forky",
    ]
    /// Suites that are not a numbered release.
    private static let debianSuites: Set<String> = ["sid", "unstable", "testing"]

    /// A Debian release's number, from its number or its code name (`trixie` gives 13); nil for the
    /// unnumbered suites (newer than any release) and for other distributions.
    package var debianMajor: Int? {
        guard name == .debian, let codename else { return nil }
        return Self.debianCodenames.first { $0.value == codename }.flatMap { Int($0.key) }
    }
    private static let ubuntuCodenames = [
        "10.04": "lucid", "10.10": "maverick", "11.04": "natty", "11.10": "oneiric", "12.04": "precise",
        "12.10": "quantal", "13.04": "raring", "13.10": "saucy", "14.04": "trusty", "14.10": "utopic",
        "15.04": "vivid", "15.10": "wily", "16.04": "xenial", "16.10": "yakkety", "17.04": "zesty",
        "17.10": "artful", "18.04": "bionic", "18.10": "cosmic", "19.04": "disco", "19.10": "eoan",
        "20.04": "focal", "20.10": "groovy", "21.04": "hirsute", "21.10": "impish", "22.04": "jammy",
        "22.10": "kinetic", "23.04": "lunar", "23.10": "mantic", "24.04": "noble", "24.10": "oracular",
        "25.04": "plucky", "25.10": "questing", "26.04": "resolute",
    ]

    /// The release's code name (`12` gives `bookworm`, `"22.04"` gives `jammy`); a known code name
    /// given as the version is kept. Nil for a release that does not exist and for RPM distributions.
    package static func codename(_ os: OSName, _ version: String) -> String? {
        switch os {
        case .debian:
            let major = String(version.prefix { $0.isNumber })
            if !major.isEmpty {
                let rest = version.dropFirst(major.count)
                guard rest.isEmpty || (rest.hasPrefix(".") && rest.dropFirst().allSatisfy(\.isNumber)) else {
                    return nil
                }
                return debianCodenames[major]
            }
            if debianSuites.contains(version) || debianCodenames.values.contains(version) { return version }
        case .ubuntu:
            if let name = ubuntuCodenames[version] { return name }
            if ubuntuCodenames.values.contains(version) { return version }
        default:
            break
        }
        return nil
    }

    /// The major releases kiln writes kickstarts for, by distribution: those pykickstart knows a
    /// syntax for (RHEL 5 and Fedora 11 on) that the distribution published.
    package static func knownMajorVersions(_ os: OSName) -> ClosedRange<Int>? {
        switch os {
        case .fedora: return 11...45
        case .rhel, .centos: return 5...10
        case .rocky, .almalinux: return 8...10
        case .sl: return 5...7
        case .debian, .ubuntu: return nil
        }
    }

    /// Whether the version names a release of this distribution that exists.
    package var isKnownRelease: Bool {
        if name.family == .debian { return codename != nil }
        guard let range = Self.knownMajorVersions(name), let major = majorVersion else { return false }
        let rest = version.dropFirst(String(major).count)
        let minorOK = rest.isEmpty || (rest.hasPrefix(".") && rest.count > 1 && rest.dropFirst().allSatisfy(\.isNumber))
        return range.contains(major) && minorOK && version.first != "0"
    }

    /// The Debian or Ubuntu code name of this release, nil for RPM distributions.
    package var codename: String? { Self.codename(name, version) }
}
