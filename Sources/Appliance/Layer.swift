import KilnSupport

/// One description file as written, before its parents are merged in. Every value keeps its
/// position so that checks made after merging still point at the line that set it.
struct Layer {
    struct PartitionLayer {
        var mountPoint: Located<String>
        var size: Located<Size>?
        /// The key was there, even if its value was refused (so no second error about it).
        var sizeWritten = false
        var type: Located<String>?
        var options: Located<String>?
        var passphrase: Located<String>?
        var grow: Located<Bool>?
    }

    struct RepoLayer {
        var mark: SourceMark
        var name: Located<String>?
        var baseurl: Located<String>?
        var mirrorlist: Located<String>?
        var ephemeral: Located<Bool>?
        var cost: Located<Int>?
        var suite: Located<String>?
        var components: [Located<String>]?
        var key: Located<String>?
    }

    struct UserLayer {
        var mark: SourceMark
        var name: Located<String>?
        var groups: [Located<String>] = []
        var password: Located<String>?
        var passwordHash: Located<String>?
        var sshKeys: [Located<String>] = []
        /// true, false or password (sudo that asks for it).
        var sudo: Located<String>?
    }

    struct NetworkLayer {
        var mark: SourceMark
        var interface: Located<String>?
        var dhcp: Located<Bool>?
        var address: Located<String>?
        var gateway: Located<String>?
        var dns: [Located<String>] = []
    }

    var file: String
    var rootMark: SourceMark
    var name: Located<String>?
    var summary: Located<String>?
    var version: Located<Int>?
    var release: Located<Int>?
    var osName: Located<String>?
    var osVersion: Located<String>?
    var osPassword: Located<String>?
    var osPasswordHash: Located<String>?
    var locale: Located<String>?
    var timezone: Located<String>?
    var keyboard: Located<String>?
    var cpus: Located<Int>?
    var memory: Located<Int>?
    var partitions: [PartitionLayer] = []
    /// `partitions: installer`.
    var partitionsByInstaller: Located<Bool>?
    var firmware: Located<String>?
    /// `hardware.arch`, as written.
    var arch: Located<String>?
    var diskSize: Located<Size>?
    var packages: [Located<String>] = []
    var packageOptions: [Located<String>]?
    var repos: [RepoLayer] = []
    var defaultRepos: Located<Bool>?
    var appliances: [Located<String>] = []
    var files: [(target: Located<String>, sources: [Located<String>])] = []
    var post: [(platform: Located<String>, commands: [Located<String>])] = []
    var variables: [(name: Located<String>, value: Located<String>)] = []
    var hostname: Located<String>?
    var users: [UserLayer] = []
    var servicesEnable: [Located<String>] = []
    var servicesDisable: [Located<String>] = []
    var network: [NetworkLayer]?
    var kernelArgs: Located<String>?
    /// A value of nil inside means `console: false`.
    var console: Located<String?>?
    var testExpect: Located<String>?
    var testTimeout: Located<Int>?
    var selinux: Located<String>?
    var firewallEnabled: Located<Bool>?
    var firewallServices: [Located<String>]?
    var firewallPorts: [Located<String>]?
    /// Where `firewall` was written, for messages about it.
    var firewallMark: SourceMark?
    var end: Located<String>?

    static let topKeys = [
        "name", "summary", "version", "release", "os", "hardware", "packages", "repos", "default_repos", "appliances",
        "files", "post", "variables", "hostname", "users", "services", "network", "kernel_args", "console", "test",
        "selinux", "firewall", "end", "package_options",
    ]

    /// Reads a composed document; problems go to `log`.
    init(root: YAMLNode, file: String, log: DiagnosticLog) {
        self.file = file
        rootMark = root.mark
        let read = NodeReader(log: log)
        guard case .mapping = root.kind else {
            log.error(root.mark, "a description must be a map of keys (name, os, ...), not \(root.kindName)")
            return
        }
        for (key, value) in read.map(root, "the description", keys: Self.topKeys) {
            switch key.value {
            case "name": name = read.string(value, "name")
            case "summary": summary = read.string(value, "summary")
            case "version": version = read.int(value, "version")
            case "release": release = read.int(value, "release")
            case "os": readOS(value, read)
            case "hardware": readHardware(value, read)
            case "packages": packages = read.strings(value, "packages")
            case "repos": repos = read.list(value, "repos").map { Self.readRepo($0, read) }
            case "default_repos": defaultRepos = read.bool(value, "default_repos")
            case "appliances": appliances = read.strings(value, "appliances")
            case "files":
                for (target, sources) in read.map(value, "files", keys: nil) {
                    files.append((target, read.strings(sources, "files '\(target.value)'")))
                }
            case "post":
                let platforms = ["base"] + Platform.allCases.map(\.rawValue)
                for (platform, commands) in read.map(value, "post", keys: platforms) {
                    post.append((platform, read.strings(commands, "post '\(platform.value)'")))
                }
            case "variables":
                for (name, text) in read.map(value, "variables", keys: nil) {
                    if let text = read.string(text, "variable '\(name.value)'") { variables.append((name, text)) }
                }
            case "hostname": hostname = read.string(value, "hostname")
            case "users": users = read.list(value, "users").map { Self.readUser($0, read) }
            case "services":
                for (which, names) in read.map(value, "services", keys: ["enable", "disable"]) {
                    if which.value == "enable" {
                        servicesEnable = read.strings(names, "services.enable")
                    } else {
                        servicesDisable = read.strings(names, "services.disable")
                    }
                }
            case "network": network = read.list(value, "network").map { Self.readNetwork($0, read) }
            case "kernel_args": kernelArgs = read.string(value, "kernel_args")
            case "console":
                if case .scalar(let text, true) = value.kind, ["false", "no", "off"].contains(text.lowercased()) {
                    console = Located(nil, value.mark)
                } else if let text = read.string(value, "console") {
                    console = text.map { Optional($0) }
                }
            case "test":
                for (field, item) in read.map(value, "test", keys: ["expect", "timeout"]) {
                    if field.value == "expect" {
                        testExpect = read.string(item, "test.expect")
                    } else {
                        testTimeout = read.int(item, "test.timeout")
                    }
                }
            case "selinux": selinux = read.string(value, "selinux")
            case "firewall":
                firewallMark = value.mark
                for (field, item) in read.map(value, "firewall", keys: ["enabled", "services", "ports"]) {
                    switch field.value {
                    case "enabled": firewallEnabled = read.bool(item, "firewall.enabled")
                    case "services": firewallServices = read.strings(item, "firewall.services")
                    default: firewallPorts = read.strings(item, "firewall.ports")
                    }
                }
            case "end": end = read.string(value, "end")
            case "package_options": packageOptions = read.strings(value, "package_options")
            default: break
            }
        }
    }

    private mutating func readOS(_ node: YAMLNode, _ read: NodeReader) {
        let keys = ["name", "version", "password", "password_hash", "locale", "timezone", "keyboard"]
        for (key, value) in read.map(node, "os", keys: keys) {
            let text = read.string(value, "os.\(key.value)")
            switch key.value {
            case "name": osName = text
            case "version": osVersion = text
            case "password": osPassword = text
            case "password_hash": osPasswordHash = text
            case "locale": locale = text
            case "timezone": timezone = text
            default: keyboard = text
            }
        }
    }

    private mutating func readHardware(_ node: YAMLNode, _ read: NodeReader) {
        let keys = ["cpus", "memory", "partitions", "firmware", "disk_size", "arch"]
        for (key, value) in read.map(node, "hardware", keys: keys) {
            switch key.value {
            case "cpus": cpus = read.int(value, "hardware.cpus")
            case "memory":
                // MiB as a number; text may carry a unit.
                if case .scalar(let text, true) = value.kind, Int(text) != nil {
                    memory = read.int(value, "hardware.memory")
                } else if let size = read.size(value, "hardware.memory") {
                    memory = size.map { Int($0.mebibytes) }
                }
            case "partitions":
                if case .scalar("installer", _) = value.kind {
                    partitionsByInstaller = Located(true, value.mark)
                    continue
                }
                for (mount, spec) in read.map(value, "hardware.partitions", keys: nil) {
                    partitions.append(Self.readPartition(mount, spec, read))
                }
            case "firmware": firmware = read.string(value, "hardware.firmware")
            case "arch": arch = read.string(value, "hardware.arch")
            default: diskSize = read.size(value, "hardware.disk_size")
            }
        }
    }

    private static func readPartition(_ mount: Located<String>, _ node: YAMLNode, _ read: NodeReader) -> PartitionLayer
    {
        var partition = PartitionLayer(mountPoint: mount)
        let what = "partition '\(mount.value)'"
        for (key, value) in read.map(node, what, keys: ["size", "type", "options", "passphrase", "grow"]) {
            switch key.value {
            case "size":
                partition.size = read.size(value, "the size of \(what)")
                partition.sizeWritten = true
            case "type": partition.type = read.string(value, "the type of \(what)")
            case "options": partition.options = read.string(value, "the options of \(what)")
            case "passphrase": partition.passphrase = read.string(value, "the passphrase of \(what)")
            default: partition.grow = read.bool(value, "grow of \(what)")
            }
        }
        return partition
    }

    private static func readRepo(_ node: YAMLNode, _ read: NodeReader) -> RepoLayer {
        var repo = RepoLayer(mark: node.mark)
        let keys = ["name", "baseurl", "mirrorlist", "ephemeral", "cost", "suite", "components", "key"]
        for (key, value) in read.map(node, "a repo", keys: keys) {
            switch key.value {
            case "name": repo.name = read.string(value, "repo name")
            case "baseurl": repo.baseurl = read.string(value, "baseurl")
            case "mirrorlist": repo.mirrorlist = read.string(value, "mirrorlist")
            case "ephemeral": repo.ephemeral = read.bool(value, "ephemeral")
            case "cost": repo.cost = read.int(value, "cost")
            case "suite": repo.suite = read.string(value, "suite")
            case "components": repo.components = read.strings(value, "components")
            default: repo.key = read.string(value, "key")
            }
        }
        return repo
    }

    private static func readUser(_ node: YAMLNode, _ read: NodeReader) -> UserLayer {
        var user = UserLayer(mark: node.mark)
        let keys = ["name", "groups", "password", "password_hash", "ssh_keys", "sudo"]
        for (key, value) in read.map(node, "a user", keys: keys) {
            switch key.value {
            case "name": user.name = read.string(value, "user name")
            case "groups": user.groups = read.strings(value, "groups")
            case "password": user.password = read.string(value, "password")
            case "password_hash": user.passwordHash = read.string(value, "password_hash")
            case "ssh_keys": user.sshKeys = read.strings(value, "ssh_keys")
            default:
                if case .scalar("password", _) = value.kind {
                    user.sudo = Located("password", value.mark)
                } else {
                    user.sudo = read.bool(value, "sudo (true, false or password)").map { $0.map { String($0) } }
                }
            }
        }
        return user
    }

    private static func readNetwork(_ node: YAMLNode, _ read: NodeReader) -> NetworkLayer {
        var interface = NetworkLayer(mark: node.mark)
        let keys = ["interface", "dhcp", "address", "gateway", "dns"]
        for (key, value) in read.map(node, "a network interface", keys: keys) {
            switch key.value {
            case "interface": interface.interface = read.string(value, "interface")
            case "dhcp": interface.dhcp = read.bool(value, "dhcp")
            case "address": interface.address = read.string(value, "address")
            case "gateway": interface.gateway = read.string(value, "gateway")
            default: interface.dns = read.strings(value, "dns")
            }
        }
        return interface
    }
}
