import KilnSupport
import Yams

/// Writes an `Appliance` as a kiln description (YAML), keys in the order the README gives them
/// and only what differs from the defaults. Passwords are written as `password_hash`.
package enum ApplianceWriter {
    /// The description text; loading it gives back the same appliance (files and platform posts
    /// aside, which are written as they are).
    package static func yaml(_ appliance: Appliance) -> String {
        var root: [(Node, Node)] = []
        func add(_ key: String, _ value: Node) { root.append((text(key), value)) }

        add("name", text(appliance.name))
        if let summary = appliance.summary { add("summary", text(summary)) }
        if appliance.version != 1 { add("version", number(appliance.version)) }
        if appliance.release != 0 { add("release", number(appliance.release)) }
        var os: [(Node, Node)] = [
            (text("name"), text(appliance.os.name.rawValue)), (text("version"), quoted(appliance.os.version)),
        ]
        if let hash = appliance.os.passwordHash { os.append((text("password_hash"), quoted(hash))) }
        let defaults = OperatingSystem(name: appliance.os.name, version: appliance.os.version)
        if appliance.os.locale != defaults.locale { os.append((text("locale"), text(appliance.os.locale))) }
        if appliance.os.timezone != defaults.timezone { os.append((text("timezone"), text(appliance.os.timezone))) }
        if appliance.os.keyboard != defaults.keyboard { os.append((text("keyboard"), text(appliance.os.keyboard))) }
        add("os", .mapping(.init(os)))
        add("hardware", hardware(appliance.hardware))
        if !appliance.packages.isEmpty { add("packages", list(appliance.packages)) }
        if !appliance.packageOptions.names.isEmpty { add("package_options", list(appliance.packageOptions.names)) }
        if !appliance.repos.isEmpty { add("repos", .sequence(.init(appliance.repos.map(repo)))) }
        if !appliance.defaultRepos { add("default_repos", .scalar(.init("false"))) }
        if !appliance.files.isEmpty {
            add(
                "files",
                .mapping(
                    .init(
                        appliance.files.map { group in
                            (
                                text(group.target),
                                list(
                                    group.sources.map { source in
                                        switch source {
                                        case .local(let path, _): return path
                                        case .url(let url): return url
                                        }
                                    })
                            )
                        })))
        }
        var post: [(Node, Node)] = []
        if !appliance.post.base.isEmpty { post.append((text("base"), list(appliance.post.base))) }
        for platform in Platform.allCases {
            if let commands = appliance.post.platforms[platform], !commands.isEmpty {
                post.append((text(platform.rawValue), list(commands)))
            }
        }
        if !post.isEmpty { add("post", .mapping(.init(post))) }
        if !appliance.variables.isEmpty {
            add(
                "variables",
                .mapping(.init(appliance.variables.sorted { $0.key < $1.key }.map { (text($0.key), quoted($0.value)) }))
            )
        }
        if let hostname = appliance.hostname { add("hostname", text(hostname)) }
        if !appliance.users.isEmpty { add("users", .sequence(.init(appliance.users.map(user)))) }
        var services: [(Node, Node)] = []
        if !appliance.services.enable.isEmpty { services.append((text("enable"), list(appliance.services.enable))) }
        if !appliance.services.disable.isEmpty { services.append((text("disable"), list(appliance.services.disable))) }
        if !services.isEmpty { add("services", .mapping(.init(services))) }
        if !appliance.network.isEmpty { add("network", .sequence(.init(appliance.network.map(interface)))) }
        if let args = appliance.kernelArgs { add("kernel_args", quoted(args)) }
        if appliance.console != SerialConsole.defaultValue(for: appliance.hardware.arch) {
            add("console", appliance.console.map { text($0.description) } ?? .scalar(.init("false")))
        }
        if appliance.test != TestSettings() {
            add(
                "test",
                .mapping(
                    .init([
                        (text("expect"), quoted(appliance.test.expect)),
                        (text("timeout"), number(appliance.test.timeout)),
                    ])))
        }
        if appliance.selinux != .enforcing { add("selinux", text(appliance.selinux.rawValue)) }
        if appliance.firewall != .default {
            var firewall: [(Node, Node)] = [
                (text("enabled"), .scalar(.init(appliance.firewall.enabled ? "true" : "false")))
            ]
            if appliance.firewall.enabled {
                firewall.append((text("services"), .sequence(.init(appliance.firewall.services.map(text)))))
            }
            if !appliance.firewall.ports.isEmpty { firewall.append((text("ports"), list(appliance.firewall.ports))) }
            add("firewall", .mapping(.init(firewall)))
        }
        if appliance.end != .reboot { add("end", text(appliance.end.rawValue)) }
        let node = Node.mapping(.init(root))
        // Serializing a tree built here cannot fail; an empty text would be refused by the loader.
        return (try? Yams.serialize(node: node, indent: 2, width: -1, allowUnicode: true, newLineScalarStyle: .literal))
            ?? ""
    }

    private static func hardware(_ hardware: Hardware) -> Node {
        var pairs: [(Node, Node)] = []
        let defaults = Hardware()
        if hardware.cpus != defaults.cpus { pairs.append((text("cpus"), number(hardware.cpus))) }
        if hardware.memory != defaults.memory { pairs.append((text("memory"), number(hardware.memory))) }
        if hardware.partitionsByInstaller {
            pairs.append((text("partitions"), text("installer")))
        } else {
            pairs.append(partitions(hardware))
        }
        if hardware.arch != defaults.arch { pairs.append((text("arch"), text(hardware.arch.rawValue))) }
        if hardware.firmware != BootFirmware.defaultValue(for: hardware.arch) {
            pairs.append((text("firmware"), text(hardware.firmware.rawValue)))
        }
        if let size = hardware.diskSize { pairs.append((text("disk_size"), text(size.description))) }
        return .mapping(.init(pairs))
    }

    private static func partitions(_ hardware: Hardware) -> (Node, Node) {
        (
            text("partitions"),
            .mapping(
                .init(
                    hardware.partitions.map { partition in
                        var fields: [(Node, Node)] = [
                            (text("size"), text(partition.size.description)),
                            (text("type"), text(partition.type.rawValue)),
                        ]
                        if let options = partition.options { fields.append((text("options"), text(options))) }
                        if let passphrase = partition.passphrase {
                            fields.append((text("passphrase"), quoted(passphrase)))
                        }
                        if partition.grow { fields.append((text("grow"), .scalar(.init("true")))) }
                        return (text(partition.mountPoint), .mapping(.init(fields)))
                    }))
        )
    }

    private static func repo(_ repo: Repository) -> Node {
        var pairs: [(Node, Node)] = [(text("name"), text(repo.name))]
        if let url = repo.baseurl { pairs.append((text("baseurl"), quoted(url))) }
        if let url = repo.mirrorlist { pairs.append((text("mirrorlist"), quoted(url))) }
        if repo.ephemeral { pairs.append((text("ephemeral"), .scalar(.init("true")))) }
        if let cost = repo.cost { pairs.append((text("cost"), number(cost))) }
        if let suite = repo.suite { pairs.append((text("suite"), text(suite))) }
        if !repo.components.isEmpty { pairs.append((text("components"), list(repo.components))) }
        if let key = repo.key { pairs.append((text("key"), text(key))) }
        return .mapping(.init(pairs))
    }

    private static func user(_ user: User) -> Node {
        var pairs: [(Node, Node)] = [(text("name"), text(user.name))]
        if !user.groups.isEmpty { pairs.append((text("groups"), list(user.groups))) }
        if let hash = user.passwordHash { pairs.append((text("password_hash"), quoted(hash))) }
        if !user.sshKeys.isEmpty { pairs.append((text("ssh_keys"), list(user.sshKeys))) }
        if user.sudo { pairs.append((text("sudo"), user.sudoAsksPassword ? text("password") : .scalar(.init("true")))) }
        return .mapping(.init(pairs))
    }

    private static func interface(_ interface: NetworkInterface) -> Node {
        var pairs: [(Node, Node)] = [(text("interface"), text(interface.interface))]
        if let config = interface.staticAddress {
            pairs.append((text("address"), text("\(config.address)/\(config.prefixLength)")))
            if let gateway = config.gateway { pairs.append((text("gateway"), text(gateway))) }
            if !config.dns.isEmpty { pairs.append((text("dns"), list(config.dns))) }
        } else {
            pairs.append((text("dhcp"), .scalar(.init("true"))))
        }
        return .mapping(.init(pairs))
    }

    /// Text that reads back as text: quoted when it would look like another type.
    private static func text(_ value: String) -> Node {
        let looksTyped =
            Int(value) != nil || Double(value) != nil
            || ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"].contains(value.lowercased())
        return .scalar(.init(value, .implicit, looksTyped || value.isEmpty ? .doubleQuoted : .any))
    }

    private static func quoted(_ value: String) -> Node {
        .scalar(.init(value, .implicit, value.contains("\n") ? .literal : .doubleQuoted))
    }

    private static func number(_ value: Int) -> Node { .scalar(.init(String(value), .implicit, .plain)) }

    private static func list(_ values: [String]) -> Node {
        .sequence(.init(values.map { $0.contains("\n") ? quoted($0) : text($0) }))
    }
}
