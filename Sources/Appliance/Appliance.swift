import KilnSupport

/// A loaded appliance description: parents merged, variables substituted, every value checked.
///
/// Load one with `ApplianceLoader`; renderers, the builder and the PXE server read only this type.
/// Passwords given as text are already SHA-512 crypt hashes here.
package struct Appliance: Sendable, Equatable {
    /// Letters, digits, `-`, `_`, `.`.
    package var name: String
    package var summary: String?
    package var version: Int
    package var release: Int
    package var os: OperatingSystem
    package var hardware: Hardware
    /// Package names in order; `@group` and `-excluded` names only for RPM targets.
    package var packages: [String]
    /// RPM targets: how `%packages` installs them.
    package var packageOptions: PackageOptions
    package var repos: [Repository]
    /// Whether the distribution's own repositories (or the host's apt sources) are used too.
    package var defaultRepos: Bool
    /// Files copied into the target, in order.
    package var files: [FileGroup]
    package var post: PostCommands
    /// Variables after merging, without the built-ins.
    package var variables: [String: String]
    package var hostname: String?
    package var users: [User]
    package var services: Services
    /// Empty means DHCP on the first interface.
    package var network: [NetworkInterface]
    package var kernelArgs: String?
    /// The serial console, or nil when turned off.
    package var console: SerialConsole?
    package var test: TestSettings
    /// RPM targets: the SELinux mode (`.yaml` default enforcing; BoxGrinder's `.appl` permissive).
    package var selinux: SELinuxMode
    /// RPM targets: the firewall (`.yaml` default on with ssh; BoxGrinder's `.appl` off).
    package var firewall: Firewall
    /// What the installer does when it is done.
    package var end: EndAction
    /// Names of the parents, nearest first, as BoxGrinder lists them.
    package var parents: [String]
    /// The description file this appliance was loaded from (absolute).
    package var sourcePath: String

    package init(
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
    package var effectiveHostname: String {
        hostname ?? String(name.map { $0 == "." || $0 == "_" ? "-" : $0 })
    }
}

/// The operating system a description installs.
package struct OperatingSystem: Sendable, Equatable {
    package var name: OSName
    /// As written (`"12"`, `"9"`, `"40"`, `"bookworm"`).
    package var version: String
    /// The root password as a crypt hash, or nil to lock root.
    package var passwordHash: String?
    /// Defaults: `en_US.UTF-8`, `Etc/UTC`, `us`.
    package var locale: String
    package var timezone: String
    package var keyboard: String

    package init(
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
    package var majorVersion: Int? {
        Int(version.prefix { $0.isNumber })
    }
}

/// The distributions kiln installs.
package enum OSName: String, Sendable, CaseIterable {
    /// `sl` is Scientific Linux, a rebuild of RHEL as CentOS was.
    case debian, ubuntu, fedora, rhel, centos, rocky, almalinux, sl

    package enum Family: Sendable {
        /// Installed by debian-installer with a preseed.
        case debian
        /// Installed by Anaconda with a kickstart.
        case redHat
    }

    package var family: Family {
        switch self {
        case .debian, .ubuntu: return .debian
        case .fedora, .rhel, .centos, .rocky, .almalinux, .sl: return .redHat
        }
    }
}

/// Virtual hardware and the disk layout.
package struct Hardware: Sendable, Equatable {
    package var cpus: Int
    /// MiB.
    package var memory: Int
    /// In the order written (parents' first); never empty after loading.
    package var partitions: [Partition]
    /// How the target boots: hybrid by default, UEFI only (and by default) for aarch64.
    package var firmware: BootFirmware
    /// The machine the image is for (`hardware.arch`, or `kiln build --arch`).
    package var arch: Architecture
    /// The whole disk; nil means the sum of the partitions plus room for the boot partitions.
    package var diskSize: Size?
    /// `partitions: installer`: install answers carry no disk layout (the installer asks, as with a
    /// kickstart without partitioning); images are built with `partitions` (kiln's default).
    package var partitionsByInstaller: Bool = false

    package init(
        cpus: Int = 1, memory: Int = 1024, partitions: [Partition] = [Partition.defaultRoot],
        firmware: BootFirmware = .hybrid, diskSize: Size? = nil, arch: Architecture = .x86_64
    ) {
        self.cpus = cpus
        self.memory = memory
        self.partitions = partitions
        self.firmware = firmware
        self.arch = arch
        self.diskSize = diskSize
    }
}

/// Which firmware the target boots under (`hardware.firmware`): BIOS, UEFI, or either (hybrid).
package enum BootFirmware: String, Sendable, CaseIterable {
    case bios, uefi, hybrid

    /// What a description gets without `hardware.firmware`: arm64 machines boot with UEFI only.
    package static func defaultValue(for arch: Architecture) -> BootFirmware {
        arch == .aarch64 ? .uefi : .hybrid
    }
}

/// A size, kept in whole MiB (rounded up).
package struct Size: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var mebibytes: Int64

    package init(mebibytes: Int64) { self.mebibytes = mebibytes }

    package var bytes: Int64 { mebibytes * 1_048_576 }

    package static func < (lhs: Size, rhs: Size) -> Bool { lhs.mebibytes < rhs.mebibytes }

    /// `4GiB` when a whole number of GiB, else `512MiB`.
    package var description: String {
        mebibytes % 1024 == 0 ? "\(mebibytes / 1024)GiB" : "\(mebibytes)MiB"
    }
}

/// One partition of the target disk.
package struct Partition: Sendable, Equatable {
    /// `/`, `/boot`, `/var`, ... or `swap`.
    package var mountPoint: String
    package var size: Size
    package var type: FilesystemType
    /// Mount options (`noatime,nodev`), as fstab takes them.
    package var options: String?
    /// A LUKS passphrase; the partition is encrypted when set. Kept as text: installers need it.
    package var passphrase: String?
    /// Take the rest of the disk (only the last partition).
    package var grow: Bool

    package init(
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

    package var isSwap: Bool { mountPoint == "swap" }

    /// What a description without partitions gets: `/`, 4 GiB, ext4, growing.
    package static let defaultRoot = Partition(mountPoint: "/", size: Size(mebibytes: 4096), type: .ext4, grow: true)
}

package enum FilesystemType: String, Sendable, CaseIterable {
    case ext4, ext3, xfs, btrfs, vfat, swap
}

/// A package repository.
package struct Repository: Sendable, Equatable {
    package var name: String
    /// Exactly one of `baseurl` and `mirrorlist` is set.
    package var baseurl: String?
    package var mirrorlist: String?
    /// Used only while installing, not written into the target.
    package var ephemeral: Bool
    /// Lower is preferred (kickstart `--cost`); repos are ordered by it.
    package var cost: Int?
    /// Debian archives: the suite (default: the release's code name) and components (default `main`).
    package var suite: String?
    package var components: [String]
    /// Debian archives: a keyring, as a URL or an absolute local path.
    package var key: String?

    package init(
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
package struct FileGroup: Sendable, Equatable {
    /// An absolute directory in the target.
    package var target: String
    package var sources: [FileSource]

    package init(target: String, sources: [FileSource]) {
        self.target = target
        self.sources = sources
    }
}

/// Where a file comes from.
package enum FileSource: Sendable, Equatable {
    /// A file on the host (absolute path), and the path it gets under its target directory: its
    /// path relative to the description (`ntp/step-tickers`), as BoxGrinder's tar kept it, or its
    /// name for a file outside the description's folder.
    case local(String, destination: String)
    case url(String)

    /// The path the file gets under its target directory (`ntp/step-tickers`, `tool.sh`).
    package var fileName: String {
        switch self {
        case .local(_, let destination): return destination
        case .url(let url):
            let path = url.split(separator: "?").first.map(String.init) ?? url
            return String(path.split(separator: "/").last ?? "")
        }
    }
}

/// Shell commands run in the target, as written.
package struct PostCommands: Sendable, Equatable {
    package var base: [String]
    package var platforms: [Platform: [String]]

    package init(base: [String] = [], platforms: [Platform: [String]] = [:]) {
        self.base = base
        self.platforms = platforms
    }
}

/// An account made in the target.
package struct User: Sendable, Equatable {
    package var name: String
    package var groups: [String]
    /// A crypt hash, or nil for an account without a password (log in with a key).
    package var passwordHash: String?
    package var sshKeys: [String]
    /// Sudo for every command.
    package var sudo: Bool
    /// With `sudo`: sudo asks for the user's password (`sudo: password`) instead of none.
    package var sudoAsksPassword: Bool

    package init(
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
    package var sudoersLine: String? {
        guard sudo else { return nil }
        return sudoAsksPassword ? "\(name) ALL=(ALL) ALL" : "\(name) ALL=(ALL) NOPASSWD: ALL"
    }
}

/// Kickstart's `%packages` options, as the `package_options` list names them.
package struct PackageOptions: Sendable, Equatable {
    /// `excludedocs`: no documentation files.
    package var excludeDocs: Bool
    /// `nocore`: not even the `@core` group unless listed.
    package var noCore: Bool
    /// `exclude-weakdeps`: no weak dependencies (Recommends).
    package var excludeWeakDeps: Bool
    /// `ignoremissing`: a package that does not exist does not stop the install.
    package var ignoreMissing: Bool
    /// `inst-langs=...`: the languages whose translations are installed.
    package var instLangs: String?

    package init(
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
    package var names: [String] {
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
package enum SELinuxMode: String, Sendable, CaseIterable {
    case enforcing, permissive, disabled
}

/// The firewall of an RPM target.
package struct Firewall: Sendable, Equatable {
    package var enabled: Bool
    /// firewalld service names (`ssh`, `http`).
    package var services: [String]
    /// `8080/tcp`, `53/udp`.
    package var ports: [String]

    package init(enabled: Bool, services: [String] = [], ports: [String] = []) {
        self.enabled = enabled
        self.services = services
        self.ports = ports
    }

    /// A `.yaml` description's firewall: on, letting SSH in.
    package static let `default` = Firewall(enabled: true, services: ["ssh"])
    /// BoxGrinder's kickstart template turned the firewall off.
    package static let boxGrinder = Firewall(enabled: false)
}

/// How an installer ends.
package enum EndAction: String, Sendable, CaseIterable {
    case reboot, poweroff, halt, shutdown
}

package struct Services: Sendable, Equatable {
    package var enable: [String]
    package var disable: [String]

    package init(enable: [String] = [], disable: [String] = []) {
        self.enable = enable
        self.disable = disable
    }
}

/// One network interface.
package struct NetworkInterface: Sendable, Equatable {
    /// A name, or `default` for the first interface.
    package var interface: String
    /// nil means DHCP.
    package var staticAddress: StaticAddress?

    package init(interface: String, staticAddress: StaticAddress? = nil) {
        self.interface = interface
        self.staticAddress = staticAddress
    }

    package var isDefault: Bool { interface == "default" }
}

/// A static IPv4 configuration.
package struct StaticAddress: Sendable, Equatable {
    package var address: String
    /// 0...32.
    package var prefixLength: Int
    package var gateway: String?
    package var dns: [String]

    package init(address: String, prefixLength: Int, gateway: String? = nil, dns: [String] = []) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
        self.dns = dns
    }

    /// The dotted netmask of `prefixLength` (24 gives 255.255.255.0).
    package var netmask: String {
        let bits: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return [24, 16, 8, 0].map { String((bits >> UInt32($0)) & 0xff) }.joined(separator: ".")
    }
}

/// A serial console: device and speed (`ttyS0,115200`).
package struct SerialConsole: Sendable, Equatable, CustomStringConvertible {
    package var device: String
    package var speed: Int

    package init(device: String, speed: Int) {
        self.device = device
        self.speed = speed
    }

    package static let `default` = SerialConsole(device: "ttyS0", speed: 115_200)

    /// The console a description gets unless it names one: the PL011 UART (`ttyAMA0`) on arm64's
    /// `virt` machines, the first 16550 (`ttyS0`) on PCs.
    package static func defaultValue(for arch: Architecture) -> SerialConsole {
        arch == .aarch64 ? SerialConsole(device: "ttyAMA0", speed: 115_200) : .default
    }

    /// `ttyS0,115200`, as the kernel's `console=` takes it.
    package var description: String { "\(device),\(speed)" }
}

/// What `kiln test` waits for.
package struct TestSettings: Sendable, Equatable {
    package var expect: String
    /// Seconds.
    package var timeout: Int

    package init(expect: String = "login:", timeout: Int = 300) {
        self.expect = expect
        self.timeout = timeout
    }
}
