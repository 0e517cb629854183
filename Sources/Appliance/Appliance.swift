import KilnSupport

/// A loaded appliance description: parents merged, variables substituted, every value checked.
///
/// Load one with `ApplianceLoader`; renderers, the builder and the PXE server read only this type.
/// Passwords given as text are already SHA-512 crypt hashes here.
public struct Appliance: Sendable, Equatable {
    /// Letters, digits, `-`, `_`, `.`.
    public var name: String
    public var summary: String?
    public var version: Int
    public var release: Int
    public var os: OperatingSystem
    public var hardware: Hardware
    /// Package names in order; `@group` and `-excluded` names only for RPM targets.
    public var packages: [String]
    /// RPM targets: how `%packages` installs them.
    public var packageOptions: PackageOptions
    public var repos: [Repository]
    /// Whether the distribution's own repositories (or the host's apt sources) are used too.
    public var defaultRepos: Bool
    /// Files copied into the target, in order.
    public var files: [FileGroup]
    public var post: PostCommands
    /// Variables after merging, without the built-ins.
    public var variables: [String: String]
    public var hostname: String?
    public var users: [User]
    public var services: Services
    /// Empty means DHCP on the first interface.
    public var network: [NetworkInterface]
    public var kernelArgs: String?
    /// The serial console, or nil when turned off.
    public var console: SerialConsole?
    public var test: TestSettings
    /// RPM targets: the SELinux mode (`.yaml` default enforcing; BoxGrinder's `.appl` permissive).
    public var selinux: SELinuxMode
    /// RPM targets: the firewall (`.yaml` default on with ssh; BoxGrinder's `.appl` off).
    public var firewall: Firewall
    /// What the installer does when it is done.
    public var end: EndAction
    /// Names of the parents, nearest first, as BoxGrinder lists them.
    public var parents: [String]
    /// The description file this appliance was loaded from (absolute).
    public var sourcePath: String

    public init(
        name: String, summary: String? = nil, version: Int = 1, release: Int = 0, os: OperatingSystem,
        hardware: Hardware = Hardware(), packages: [String] = [], packageOptions: PackageOptions = PackageOptions(),
        repos: [Repository] = [], defaultRepos: Bool = true,
        files: [FileGroup] = [], post: PostCommands = PostCommands(), variables: [String: String] = [:],
        hostname: String? = nil, users: [User] = [], services: Services = Services(),
        network: [NetworkInterface] = [], kernelArgs: String? = nil, console: SerialConsole? = .default,
        test: TestSettings = TestSettings(), selinux: SELinuxMode = .enforcing, firewall: Firewall = .default,
        end: EndAction = .reboot, parents: [String] = [], sourcePath: String = ""
    ) {
        self.name = name
        self.summary = summary
        self.version = version
        self.release = release
        self.os = os
        self.hardware = hardware
        self.packages = packages
        self.packageOptions = packageOptions
        self.repos = repos
        self.defaultRepos = defaultRepos
        self.files = files
        self.post = post
        self.variables = variables
        self.hostname = hostname
        self.users = users
        self.services = services
        self.network = network
        self.kernelArgs = kernelArgs
        self.console = console
        self.test = test
        self.selinux = selinux
        self.firewall = firewall
        self.end = end
        self.parents = parents
        self.sourcePath = sourcePath
    }

    /// The host name the target gets: `hostname`, else the appliance name with dots and underscores
    /// made into dashes.
    public var effectiveHostname: String {
        hostname ?? String(name.map { $0 == "." || $0 == "_" ? "-" : $0 })
    }
}

/// The operating system a description installs.
public struct OperatingSystem: Sendable, Equatable {
    public var name: OSName
    /// As written (`"12"`, `"9"`, `"40"`, `"bookworm"`).
    public var version: String
    /// The root password as a crypt hash, or nil to lock root.
    public var passwordHash: String?
    /// Defaults: `en_US.UTF-8`, `Etc/UTC`, `us`.
    public var locale: String
    public var timezone: String
    public var keyboard: String

    public init(
        name: OSName, version: String, passwordHash: String? = nil, locale: String = "en_US.UTF-8",
        timezone: String = "Etc/UTC", keyboard: String = "us"
    ) {
        self.name = name
        self.version = version
        self.passwordHash = passwordHash
        self.locale = locale
        self.timezone = timezone
        self.keyboard = keyboard
    }

    /// The major version as a number when the version starts with one (`"9.4"` gives 9).
    public var majorVersion: Int? {
        Int(version.prefix { $0.isNumber })
    }
}

/// The distributions kiln installs.
public enum OSName: String, Sendable, CaseIterable {
    /// `sl` is Scientific Linux, a rebuild of RHEL as CentOS was.
    case debian, ubuntu, fedora, rhel, centos, rocky, almalinux, sl

    public enum Family: Sendable {
        /// Installed by debian-installer with a preseed.
        case debian
        /// Installed by Anaconda with a kickstart.
        case redHat
    }

    public var family: Family {
        switch self {
        case .debian, .ubuntu: return .debian
        case .fedora, .rhel, .centos, .rocky, .almalinux, .sl: return .redHat
        }
    }
}

/// Virtual hardware and the disk layout.
public struct Hardware: Sendable, Equatable {
    public var cpus: Int
    /// MiB.
    public var memory: Int
    /// In the order written (parents' first); never empty after loading.
    public var partitions: [Partition]
    /// How the target boots: hybrid by default, UEFI only (and by default) for aarch64.
    public var firmware: Firmware
    /// The machine the image is for (`hardware.arch`, or `kiln build --arch`).
    public var arch: Architecture
    /// The whole disk; nil means the sum of the partitions plus room for the boot partitions.
    public var diskSize: Size?
    /// `partitions: installer`: install answers carry no disk layout (the installer asks, as with a
    /// kickstart without partitioning); images are built with `partitions` (kiln's default).
    public var partitionsByInstaller: Bool = false

    public init(
        cpus: Int = 1, memory: Int = 1024, partitions: [Partition] = [Partition.defaultRoot],
        firmware: Firmware = .hybrid, diskSize: Size? = nil, arch: Architecture = .x86_64
    ) {
        self.cpus = cpus
        self.memory = memory
        self.partitions = partitions
        self.firmware = firmware
        self.arch = arch
        self.diskSize = diskSize
    }
}

/// How the target boots.
public enum Firmware: String, Sendable, CaseIterable {
    case bios, uefi, hybrid

    /// What a description gets without `hardware.firmware`: arm64 machines boot with UEFI only.
    public static func defaultValue(for arch: Architecture) -> Firmware {
        arch == .aarch64 ? .uefi : .hybrid
    }
}

/// A size, kept in whole MiB (rounded up).
public struct Size: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var mebibytes: Int64

    public init(mebibytes: Int64) { self.mebibytes = mebibytes }

    public var bytes: Int64 { mebibytes * 1_048_576 }

    public static func < (lhs: Size, rhs: Size) -> Bool { lhs.mebibytes < rhs.mebibytes }

    /// `4GiB` when a whole number of GiB, else `512MiB`.
    public var description: String {
        mebibytes % 1024 == 0 ? "\(mebibytes / 1024)GiB" : "\(mebibytes)MiB"
    }
}

/// One partition of the target disk.
public struct Partition: Sendable, Equatable {
    /// `/`, `/boot`, `/var`, ... or `swap`.
    public var mountPoint: String
    public var size: Size
    public var type: FilesystemType
    /// Mount options (`noatime,nodev`), as fstab takes them.
    public var options: String?
    /// A LUKS passphrase; the partition is encrypted when set. Kept as text: installers need it.
    public var passphrase: String?
    /// Take the rest of the disk (only the last partition).
    public var grow: Bool

    public init(
        mountPoint: String, size: Size, type: FilesystemType, options: String? = nil, passphrase: String? = nil,
        grow: Bool = false
    ) {
        self.mountPoint = mountPoint
        self.size = size
        self.type = type
        self.options = options
        self.passphrase = passphrase
        self.grow = grow
    }

    public var isSwap: Bool { mountPoint == "swap" }

    /// What a description without partitions gets: `/`, 4 GiB, ext4, growing.
    public static let defaultRoot = Partition(mountPoint: "/", size: Size(mebibytes: 4096), type: .ext4, grow: true)
}

public enum FilesystemType: String, Sendable, CaseIterable {
    case ext4, ext3, xfs, btrfs, vfat, swap
}

/// A package repository.
public struct Repository: Sendable, Equatable {
    public var name: String
    /// Exactly one of `baseurl` and `mirrorlist` is set.
    public var baseurl: String?
    public var mirrorlist: String?
    /// Used only while installing, not written into the target.
    public var ephemeral: Bool
    /// Lower is preferred (kickstart `--cost`); repos are ordered by it.
    public var cost: Int?
    /// Debian archives: the suite (default: the release's code name) and components (default `main`).
    public var suite: String?
    public var components: [String]
    /// Debian archives: a keyring, as a URL or an absolute local path.
    public var key: String?

    public init(
        name: String, baseurl: String? = nil, mirrorlist: String? = nil, ephemeral: Bool = false, cost: Int? = nil,
        suite: String? = nil, components: [String] = [], key: String? = nil
    ) {
        self.name = name
        self.baseurl = baseurl
        self.mirrorlist = mirrorlist
        self.ephemeral = ephemeral
        self.cost = cost
        self.suite = suite
        self.components = components
        self.key = key
    }
}

/// Files copied into one target directory.
public struct FileGroup: Sendable, Equatable {
    /// An absolute directory in the target.
    public var target: String
    public var sources: [FileSource]

    public init(target: String, sources: [FileSource]) {
        self.target = target
        self.sources = sources
    }
}

/// Where a file comes from.
public enum FileSource: Sendable, Equatable {
    /// A file on the host (absolute path), and the path it gets under its target directory: its
    /// path relative to the description (`ntp/step-tickers`), as BoxGrinder's tar kept it, or its
    /// name for a file outside the description's folder.
    case local(String, destination: String)
    case url(String)

    /// The path the file gets under its target directory (`ntp/step-tickers`, `tool.sh`).
    public var fileName: String {
        switch self {
        case .local(_, let destination): return destination
        case .url(let url):
            let path = url.split(separator: "?").first.map(String.init) ?? url
            return String(path.split(separator: "/").last ?? "")
        }
    }
}

/// The platforms `post` has lists for, besides `base`.
public enum Platform: String, Sendable, CaseIterable {
    case vmware, virtualbox, hyperv, ec2, gce
}

/// Shell commands run in the target, as written.
public struct PostCommands: Sendable, Equatable {
    public var base: [String]
    public var platforms: [Platform: [String]]

    public init(base: [String] = [], platforms: [Platform: [String]] = [:]) {
        self.base = base
        self.platforms = platforms
    }
}

/// An account made in the target.
public struct User: Sendable, Equatable {
    public var name: String
    public var groups: [String]
    /// A crypt hash, or nil for an account without a password (log in with a key).
    public var passwordHash: String?
    public var sshKeys: [String]
    /// Sudo for every command.
    public var sudo: Bool
    /// With `sudo`: sudo asks for the user's password (`sudo: password`) instead of none.
    public var sudoAsksPassword: Bool

    public init(
        name: String, groups: [String] = [], passwordHash: String? = nil, sshKeys: [String] = [], sudo: Bool = false,
        sudoAsksPassword: Bool = false
    ) {
        self.name = name
        self.groups = groups
        self.passwordHash = passwordHash
        self.sshKeys = sshKeys
        self.sudo = sudo
        self.sudoAsksPassword = sudoAsksPassword
    }

    /// The user's line in `/etc/sudoers.d`, or nil without sudo.
    public var sudoersLine: String? {
        guard sudo else { return nil }
        return sudoAsksPassword ? "\(name) ALL=(ALL) ALL" : "\(name) ALL=(ALL) NOPASSWD: ALL"
    }
}

/// Kickstart's `%packages` options, as the `package_options` list names them.
public struct PackageOptions: Sendable, Equatable {
    /// `excludedocs`: no documentation files.
    public var excludeDocs: Bool
    /// `nocore`: not even the `@core` group unless listed.
    public var noCore: Bool
    /// `exclude-weakdeps`: no weak dependencies (Recommends).
    public var excludeWeakDeps: Bool
    /// `ignoremissing`: a package that does not exist does not stop the install.
    public var ignoreMissing: Bool
    /// `inst-langs=...`: the languages whose translations are installed.
    public var instLangs: String?

    public init(
        excludeDocs: Bool = false, noCore: Bool = false, excludeWeakDeps: Bool = false, ignoreMissing: Bool = false,
        instLangs: String? = nil
    ) {
        self.excludeDocs = excludeDocs
        self.noCore = noCore
        self.excludeWeakDeps = excludeWeakDeps
        self.ignoreMissing = ignoreMissing
        self.instLangs = instLangs
    }

    /// As the description writes them (`excludedocs`, `inst-langs=en_US`).
    public var names: [String] {
        var names: [String] = []
        if excludeDocs { names.append("excludedocs") }
        if noCore { names.append("nocore") }
        if excludeWeakDeps { names.append("exclude-weakdeps") }
        if ignoreMissing { names.append("ignoremissing") }
        if let instLangs { names.append("inst-langs=\(instLangs)") }
        return names
    }
}

/// The SELinux mode of an RPM target.
public enum SELinuxMode: String, Sendable, CaseIterable {
    case enforcing, permissive, disabled
}

/// The firewall of an RPM target.
public struct Firewall: Sendable, Equatable {
    public var enabled: Bool
    /// firewalld service names (`ssh`, `http`).
    public var services: [String]
    /// `8080/tcp`, `53/udp`.
    public var ports: [String]

    public init(enabled: Bool, services: [String] = [], ports: [String] = []) {
        self.enabled = enabled
        self.services = services
        self.ports = ports
    }

    /// A `.yaml` description's firewall: on, letting SSH in.
    public static let `default` = Firewall(enabled: true, services: ["ssh"])
    /// BoxGrinder's kickstart template turned the firewall off.
    public static let boxGrinder = Firewall(enabled: false)
}

/// How an installer ends.
public enum EndAction: String, Sendable, CaseIterable {
    case reboot, poweroff, halt, shutdown
}

public struct Services: Sendable, Equatable {
    public var enable: [String]
    public var disable: [String]

    public init(enable: [String] = [], disable: [String] = []) {
        self.enable = enable
        self.disable = disable
    }
}

/// One network interface.
public struct NetworkInterface: Sendable, Equatable {
    /// A name, or `default` for the first interface.
    public var interface: String
    /// nil means DHCP.
    public var staticAddress: StaticAddress?

    public init(interface: String, staticAddress: StaticAddress? = nil) {
        self.interface = interface
        self.staticAddress = staticAddress
    }

    public var isDefault: Bool { interface == "default" }
}

/// A static IPv4 configuration.
public struct StaticAddress: Sendable, Equatable {
    public var address: String
    /// 0...32.
    public var prefixLength: Int
    public var gateway: String?
    public var dns: [String]

    public init(address: String, prefixLength: Int, gateway: String? = nil, dns: [String] = []) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.dns = dns
    }

    /// The dotted netmask of `prefixLength` (24 gives 255.255.255.0).
    public var netmask: String {
        let bits: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return [24, 16, 8, 0].map { String((bits >> UInt32($0)) & 0xff) }.joined(separator: ".")
    }
}

/// A serial console: device and speed (`ttyS0,115200`).
public struct SerialConsole: Sendable, Equatable, CustomStringConvertible {
    public var device: String
    public var speed: Int

    public init(device: String, speed: Int) {
        self.device = device
        self.speed = speed
    }

    public static let `default` = SerialConsole(device: "ttyS0", speed: 115_200)

    /// The console a description gets unless it names one: the PL011 UART (`ttyAMA0`) on arm64's
    /// `virt` machines, the first 16550 (`ttyS0`) on PCs.
    public static func defaultValue(for arch: Architecture) -> SerialConsole {
        arch == .aarch64 ? SerialConsole(device: "ttyAMA0", speed: 115_200) : .default
    }

    /// `ttyS0,115200`, as the kernel's `console=` takes it.
    public var description: String { "\(device),\(speed)" }
}

/// What `kiln test` waits for.
public struct TestSettings: Sendable, Equatable {
    public var expect: String
    /// Seconds.
    public var timeout: Int

    public init(expect: String = "login:", timeout: Int = 300) {
        self.expect = expect
        self.timeout = timeout
    }
}
