import Appliance
import Foundation
import NetBoot

extension LabConfig {
    /// The largest lab file kiln reads.
    static let maximumFileSize = 1 << 20

    /// Reads and checks a lab file, and loads every host's description so that a broken one is named
    /// now rather than when the host boots.
    /// - Throws: `NetBootError(.configuration)` whose message is one or more `FILE:LINE:COL: error: ...`
    ///   lines.
    package static func load(_ path: String) throws -> LabConfig {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw NetBootError(.configuration, "\(path):1:1: error: cannot read the lab file")
        }
        guard data.count <= maximumFileSize else {
            throw NetBootError(.configuration, "\(path):1:1: error: lab file is larger than 1 MiB")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NetBootError(.configuration, "\(path):1:1: error: lab file is not UTF-8")
        }
        return try parse(text, path: path, absolutePath: absolute)
    }

    /// Parses lab file text; `path` is how messages name the file.
    /// - Throws: `NetBootError(.configuration)` with `FILE:LINE:COL: error: ...` lines.
    package static func parse(_ text: String, path: String, absolutePath: String? = nil) throws -> LabConfig {
        var reader = LabFileReader(file: path, absolutePath: absolutePath ?? path)
        // Appliance's composer, as for descriptions: positions, alias limits, duplicate keys.
        let root: YAMLNode?
        do {
            root = try YAMLComposer(file: path).compose(text)
        } catch {
            throw NetBootError(.configuration, "\(error.mark): error: \(error.message)")
        }
        guard let root else {
            throw NetBootError(.configuration, "\(path):1:1: error: the lab file is empty")
        }
        let config = reader.config(root)
        guard reader.errors.isEmpty, let config else {
            throw NetBootError(.configuration, reader.errors.joined(separator: "\n"))
        }
        return config
    }
}

/// Turns the composed YAML of a lab file into a `LabConfig`, collecting every problem with its position.
struct LabFileReader {
    let file: String
    let folder: String
    var errors: [String] = []

    init(file: String, absolutePath: String) {
        self.file = file
        folder = String(absolutePath[..<(absolutePath.lastIndex(of: "/") ?? absolutePath.startIndex)])
    }

    static let topKeys = ["address", "interface", "tftp", "http", "dhcp", "boot_loaders", "state", "hosts"]
    static let dhcpKeys = ["mode", "range", "netmask", "router", "dns", "lease_time", "lease_file"]
    static let loaderKeys = ["bios", "uefi", "ipxe"]
    static let hostKeys = [
        "mac", "name", "description", "image", "install", "disk", "after", "address", "kernel_args", "installer",
        "boot_loaders", "arch",
    ]
    static let installerKeys = ["kernel", "initrd"]

    mutating func fail(_ node: YAMLNode, _ message: String) {
        errors.append("\(node.mark): error: \(message)")
    }

    /// The mapping's pairs by key, after reporting unknown keys. (The composer refuses repeated keys and
    /// keys that are not text.)
    mutating func fields(_ node: YAMLNode, allowed: [String], what: String) -> [String: YAMLNode]? {
        guard case .mapping(let pairs) = node.kind else {
            fail(node, "\(what) must be a map")
            return nil
        }
        var result: [String: YAMLNode] = [:]
        for (key, value) in pairs {
            let name = key.scalarText ?? ""
            guard allowed.contains(name) else {
                let hint = closest(to: name, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                fail(key, "unknown key '\(name)' in \(what)\(hint)")
                continue
            }
            result[name] = value
        }
        return result
    }

    mutating func string(_ node: YAMLNode, _ what: String) -> String? {
        guard let text = node.scalarText, !text.isEmpty else {
            fail(node, "\(what) must be text")
            return nil
        }
        return text
    }

    mutating func ipv4(_ node: YAMLNode, _ what: String) -> IPv4Address? {
        guard let text = string(node, what) else { return nil }
        guard let address = IPv4Address(text) else {
            fail(node, "\(what) '\(text)' is not an IPv4 address")
            return nil
        }
        return address
    }

    mutating func path(_ node: YAMLNode, _ what: String) -> String? {
        guard let text = string(node, what) else { return nil }
        return text.hasPrefix("/") ? text : folder + "/" + text
    }

    mutating func listen(_ node: YAMLNode, _ what: String, defaultPort: Int) -> HostPort?? {
        guard let text = string(node, what) else { return nil }
        if text == "off" { return .some(nil) }
        do {
            return .some(try HostPort(parsing: text, defaultPort: defaultPort))
        } catch let error as NetBootError {
            fail(node, "\(what): \(error.message)")
        } catch {
            fail(node, "\(what): \(error)")
        }
        return nil
    }

    mutating func config(_ root: YAMLNode) -> LabConfig? {
        guard let top = fields(root, allowed: Self.topKeys, what: "the lab file") else { return nil }
        var address: IPv4Address?
        if let node = top["address"] {
            address = ipv4(node, "address")
        } else {
            fail(root, "missing 'address' (kiln's IPv4 address on the lab network)")
        }
        var interface: String?
        if let node = top["interface"] { interface = string(node, "interface") }
        var tftp: HostPort? = HostPort(host: "::", port: 69)
        if let node = top["tftp"], let value = listen(node, "tftp", defaultPort: 69) { tftp = value }
        var http: HostPort? = HostPort(host: "::", port: 80)
        if let node = top["http"], let value = listen(node, "http", defaultPort: 80) { http = value }
        var loaders = LabConfig.Loaders()
        if let node = top["boot_loaders"] { loaders = loaderChoice(node, defaults: loaders) }
        let labName = file.split(separator: "/").last.map(String.init) ?? "lab"
        var state = folder + "/" + labName + ".state"
        if let node = top["state"], let value = path(node, "state") { state = value }
        var dhcp = LabConfig.DHCPSettings(mode: .proxy, leaseFile: state + "/leases")
        if let node = top["dhcp"] { dhcp = dhcpSettings(node, default: dhcp) ?? dhcp }
        var hosts: [LabConfig.Host] = []
        if let node = top["hosts"] {
            if case .sequence(let items) = node.kind {
                for item in items { if let host = host(item, loaders: loaders) { hosts.append(host) } }
            } else if !node.isNull {
                fail(node, "hosts must be a list")
            }
        }
        checkUnique(hosts, address: address, dhcp: dhcp)
        if dhcp.mode != .off, tftp == nil, http == nil {
            fail(root, "DHCP points clients at kiln, but both tftp and http are off")
        }
        guard let address else { return nil }
        return LabConfig(
            path: folder + "/" + labName, address: address, interface: interface, tftp: tftp, http: http, dhcp: dhcp,
            loaders: loaders, stateDirectory: state, hosts: hosts)
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: YAMLNode, _ what: String) -> T?
    where T.RawValue == String {
        guard let text = string(node, what) else { return nil }
        guard let value = T(rawValue: text) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            fail(node, "\(what) '\(text)' is not one of \(names)")
            return nil
        }
        return value
    }

    /// A `boot_loaders` map; keys it does not name keep `defaults`.
    mutating func loaderChoice(_ node: YAMLNode, defaults: LabConfig.Loaders) -> LabConfig.Loaders {
        var loaders = defaults
        guard let map = fields(node, allowed: Self.loaderKeys, what: "boot_loaders") else { return loaders }
        if let node = map["bios"], let value: LabConfig.BIOSLoader = choice(node, "boot_loaders.bios") {
            loaders.bios = value
        }
        if let node = map["uefi"], let value: LabConfig.UEFILoader = choice(node, "boot_loaders.uefi") {
            loaders.uefi = value
        }
        if let node = map["ipxe"], let text = string(node, "boot_loaders.ipxe") {
            switch text {
            case "script": loaders.ipxeScript = true
            case "loader": loaders.ipxeScript = false
            default: fail(node, "boot_loaders.ipxe '\(text)' is not one of script, loader")
            }
        }
        return loaders
    }

    mutating func dhcpSettings(_ node: YAMLNode, default settings: LabConfig.DHCPSettings) -> LabConfig.DHCPSettings? {
        guard let map = fields(node, allowed: Self.dhcpKeys, what: "dhcp") else { return nil }
        var settings = settings
        if let node = map["mode"], let mode: LabConfig.DHCPMode = choice(node, "dhcp.mode") { settings.mode = mode }
        if let node = map["range"], let text = string(node, "dhcp.range") {
            let ends = text.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
            if ends.count == 2, let low = IPv4Address(ends[0]), let high = IPv4Address(ends[1]), low <= high {
                settings.range = low...high
            } else {
                fail(node, "dhcp.range '\(text)' is not FIRST-LAST (two IPv4 addresses, the lower first)")
            }
        }
        if let node = map["netmask"], let mask = ipv4(node, "dhcp.netmask") {
            let inverted = ~mask.value
            if inverted & (inverted &+ 1) != 0 {
                fail(node, "dhcp.netmask '\(mask)' is not a netmask")
            } else {
                settings.netmask = mask
            }
        }
        if let node = map["router"] { settings.router = ipv4(node, "dhcp.router") }
        if let node = map["dns"] {
            var items = [node]
            if case .sequence(let list) = node.kind { items = list }
            settings.dns = items.compactMap { ipv4($0, "dhcp.dns") }
        }
        if let node = map["lease_time"] {
            if let seconds = node.scalarText.flatMap({ Int($0) }), seconds >= 60, seconds <= 31_536_000 {
                settings.leaseTime = seconds
            } else {
                fail(node, "dhcp.lease_time must be a number of seconds within 60...31536000")
            }
        }
        if let node = map["lease_file"], let value = path(node, "dhcp.lease_file") { settings.leaseFile = value }
        if settings.mode == .server && settings.range == nil {
            fail(node, "dhcp mode 'server' needs a range (FIRST-LAST)")
        }
        return settings
    }

    mutating func host(_ node: YAMLNode, loaders labLoaders: LabConfig.Loaders) -> LabConfig.Host? {
        guard let map = fields(node, allowed: Self.hostKeys, what: "a host") else { return nil }
        var mac: MACAddress?
        if let node = map["mac"], let text = string(node, "mac") {
            mac = MACAddress(text)
            if mac == nil { fail(node, "mac '\(text)' is not a MAC address (52:54:00:12:34:56)") }
        } else if map["mac"] == nil {
            fail(node, "a host needs a 'mac'")
        }
        var name: String?
        if let node = map["name"], let text = string(node, "name") {
            if text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }) {
                name = text
            } else {
                fail(node, "name '\(text)' may hold only letters, digits, '-', '_' and '.'")
            }
        } else if map["name"] == nil {
            fail(node, "a host needs a 'name'")
        }
        var description: String?
        if let node = map["description"], let file = path(node, "description") {
            do {
                _ = try ApplianceLoader().load(file)
                description = file
            } catch {
                errors += error.diagnostics.map(\.description)
                description = file
            }
        }
        var image: String?
        if let imageNode = map["image"], let named = path(imageNode, "image") {
            let file = (named as NSString).standardizingPath
            image = file
            var info = stat()
            if stat(file, &info) != 0 {
                fail(imageNode, "image '\(file)' does not exist")
            } else if info.st_mode & S_IFMT != S_IFREG {
                fail(imageNode, "image '\(file)' is not a regular file")
            }
            if let other = map["description"] {
                fail(other, "a host names either an 'image' or a 'description' (with 'install: image' to build it)")
            }
        }
        var install: LabConfig.InstallMethod?
        if let installNode = map["install"] {
            install = choice(installNode, "install")
            if install == .installer && image != nil {
                fail(installNode, "install 'installer' needs a 'description', not an 'image'")
            }
        }
        if map["description"] == nil && map["image"] == nil {
            fail(node, "a host needs a 'description' (the appliance it installs) or an 'image' (the disk it is given)")
        }
        var disk: String?
        if let diskNode = map["disk"], let text = string(diskNode, "disk") {
            if text.hasPrefix("/dev/") && !text.contains("..") && !text.contains(where: \.isWhitespace) {
                disk = text
            } else {
                fail(diskNode, "disk '\(text)' is not a device path (/dev/sda, /dev/nvme0n1)")
            }
        }
        var after = LabConfig.AfterDeploy.reboot
        if let afterNode = map["after"], let value: LabConfig.AfterDeploy = choice(afterNode, "after") { after = value }
        let deploys = image != nil || install == .image
        if !deploys, let extra = map["disk"] ?? map["after"] {
            fail(extra, "'disk' and 'after' go with an image deploy ('image:' or 'install: image')")
        }
        var address: IPv4Address?
        if let node = map["address"] { address = ipv4(node, "address") }
        var kernelArgs: String?
        if let node = map["kernel_args"] { kernelArgs = string(node, "kernel_args") }
        var installer: (kernel: String, initrd: String)?
        if let node = map["installer"], let files = fields(node, allowed: Self.installerKeys, what: "installer") {
            if let kernel = files["kernel"].flatMap({ path($0, "installer.kernel") }),
                let initrd = files["initrd"].flatMap({ path($0, "installer.initrd") })
            {
                installer = (kernel, initrd)
            } else if files["kernel"] == nil || files["initrd"] == nil {
                fail(node, "installer needs both 'kernel' and 'initrd'")
            }
        }
        var loaders: LabConfig.Loaders?
        if let node = map["boot_loaders"] { loaders = loaderChoice(node, defaults: labLoaders) }
        var arch = BootArchitecture.x86_64
        if let archNode = map["arch"], let text = string(archNode, "arch") {
            if let value = BootArchitecture(rawValue: text) {
                arch = value
            } else {
                // Debian's names (amd64, arm64) are what lab admins type from dpkg.
                let debian = BootArchitecture.allCases.first { $0.debian == text }
                let hint = debian.map { " (Debian's \(text) is '\($0.rawValue)')" } ?? ""
                fail(archNode, "arch '\(text)' is not one of x86_64, aarch64\(hint)")
            }
            if arch == .aarch64 && deploys {
                fail(
                    archNode,
                    "arm64 image deploys are not supported yet: kiln's deploy agent is x86_64 only (an arm64 host can boot Debian's installer: a 'description' without 'install: image')"
                )
            }
        }
        guard let mac, let name, description != nil || image != nil else { return nil }
        return LabConfig.Host(
            mac: mac, name: name, description: description, image: image, install: install, disk: disk, after: after,
            address: address, kernelArgs: kernelArgs, installer: installer, loaders: loaders, arch: arch,
            mark: node.mark)
    }

    mutating func checkUnique(_ hosts: [LabConfig.Host], address: IPv4Address?, dhcp: LabConfig.DHCPSettings) {
        var macs: [MACAddress: LabConfig.Host] = [:]
        var names: [String: LabConfig.Host] = [:]
        var addresses: [IPv4Address: LabConfig.Host] = [:]
        for host in hosts {
            if let other = macs[host.mac] {
                errors.append("\(host.mark): error: mac \(host.mac) is also host '\(other.name)' at \(other.mark)")
            }
            if let other = names[host.name] {
                errors.append("\(host.mark): error: name '\(host.name)' is also used at \(other.mark)")
            }
            if let fixed = host.address {
                if let other = addresses[fixed] {
                    errors.append("\(host.mark): error: address \(fixed) is also host '\(other.name)'s")
                }
                if fixed == address {
                    errors.append("\(host.mark): error: address \(fixed) is kiln's own")
                }
                addresses[fixed] = host
            }
            macs[host.mac] = host
            names[host.name] = host
        }
    }
}
