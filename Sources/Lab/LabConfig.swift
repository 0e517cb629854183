import Appliance
import NetBoot

/// A lab file (`kiln serve --config lab.yaml`): where kiln listens, how it answers DHCP, which boot
/// loaders it hands out, and the hosts it knows with the description each one installs.
///
/// Relative paths in the file are relative to the file's folder; `load` makes them absolute.
package struct LabConfig: Sendable, Equatable {
    /// How kiln takes part in DHCP.
    package enum DHCPMode: String, Sendable, CaseIterable {
        /// Beside the lab's own DHCP server: answer only the network-boot part (ports 67 and 4011).
        case proxy
        /// The lab's only DHCP server: addresses from `range`, fixed ones for known hosts.
        case server
        /// No DHCP at all (the lab's DHCP server points clients at kiln).
        case off
    }

    /// The full DHCP server's settings (`dhcp:` with `mode: server`).
    package struct DHCPSettings: Sendable, Equatable {
        package var mode: DHCPMode
        /// Addresses handed to hosts without a fixed one.
        package var range: ClosedRange<IPv4Address>?
        package var netmask: IPv4Address
        package var router: IPv4Address?
        package var dns: [IPv4Address]
        /// Seconds.
        package var leaseTime: Int
        /// Absolute path of the lease file.
        package var leaseFile: String

        package init(
            mode: DHCPMode, range: ClosedRange<IPv4Address>? = nil,
            netmask: IPv4Address = IPv4Address(0xFFFF_FF00), router: IPv4Address? = nil, dns: [IPv4Address] = [],
            leaseTime: Int = 3600, leaseFile: String
        ) {
            self.mode = mode
            self.range = range
            self.netmask = netmask
            self.router = router
            self.dns = dns
            self.leaseTime = leaseTime
            self.leaseFile = leaseFile
        }
    }

    /// The first stage handed to BIOS clients.
    package enum BIOSLoader: String, Sendable, CaseIterable {
        case pxelinux, ipxe
    }

    /// The first stage handed to x86-64 UEFI clients.
    package enum UEFILoader: String, Sendable, CaseIterable {
        case grub, ipxe
    }

    /// Which first stage each kind of client gets.
    package struct Loaders: Sendable, Equatable {
        package var bios: BIOSLoader
        package var uefi: UEFILoader
        /// Whether iPXE (user class "iPXE") gets its HTTP script (true) or the first stage for its
        /// firmware, like any PXE client (false: iPXE then loads pxelinux or GRUB).
        package var ipxeScript: Bool

        package init(bios: BIOSLoader = .pxelinux, uefi: UEFILoader = .grub, ipxeScript: Bool = true) {
            self.bios = bios
            self.uefi = uefi
            self.ipxeScript = ipxeScript
        }
    }

    /// How a host is installed.
    package enum InstallMethod: String, Sendable, CaseIterable {
        /// An installer (Debian's netboot installer, or the host's own) with a preseed or kickstart.
        case installer
        /// kiln's deploy agent writes a disk image to the host's disk.
        case image
    }

    /// What a host does once its image is written.
    package enum AfterDeploy: String, Sendable, CaseIterable {
        case reboot, poweroff
    }

    /// One lab host.
    package struct Host: Sendable, Equatable {
        package var mac: MACAddress
        package var name: String
        /// Absolute path of the host's appliance description; nil for a host that names only an `image`.
        package var description: String?
        /// Absolute path of the disk image the host is deployed with (`image:`); nil when it is built
        /// from the description (`install: image`) or installed by an installer.
        package var image: String?
        package var install: InstallMethod
        /// The target disk for an image deploy (`/dev/sda`); nil for the first fixed disk the agent finds.
        package var disk: String?
        package var after: AfterDeploy
        /// A fixed address (server mode).
        package var address: IPv4Address?
        /// Added to the installer's kernel command line.
        package var kernelArgs: String?
        /// An installer kernel and initrd of the host's own (absolute paths); nil for the one kiln takes
        /// from Debian's netboot package.
        package var installer: (kernel: String, initrd: String)?
        /// The host's own boot loaders, when they differ from the lab's.
        package var loaders: Loaders?
        /// What the host runs (`arch:`): which installer it boots, and the firmware kiln expects.
        package var arch: BootArchitecture
        /// Where the host is written in the lab file.
        package var mark: SourceMark

        package init(
            mac: MACAddress, name: String, description: String?, image: String? = nil,
            install: InstallMethod? = nil, disk: String? = nil, after: AfterDeploy = .reboot,
            address: IPv4Address? = nil, kernelArgs: String? = nil, installer: (kernel: String, initrd: String)? = nil,
            loaders: Loaders? = nil, arch: BootArchitecture = .x86_64,
            mark: SourceMark = SourceMark(file: "", line: 0, column: 0)
        ) {
            self.loaders = loaders
            self.arch = arch
            self.mac = mac
            self.name = name
            self.description = description
            self.image = image
            self.install = install ?? (image != nil ? .image : .installer)
            self.disk = disk
            self.after = after
            self.address = address
            self.kernelArgs = kernelArgs
            self.installer = installer
            self.mark = mark
        }

        package static func == (a: Host, b: Host) -> Bool {
            a.mac == b.mac && a.name == b.name && a.description == b.description && a.image == b.image
                && a.install == b.install && a.disk == b.disk && a.after == b.after && a.address == b.address
                && a.kernelArgs == b.kernelArgs && a.installer?.kernel == b.installer?.kernel
                && a.installer?.initrd == b.installer?.initrd && a.loaders == b.loaders && a.arch == b.arch
                && a.mark == b.mark
        }
    }

    /// The lab file's absolute path.
    package var path: String
    /// kiln's IPv4 address on the lab network: the next server in DHCP replies and the host in URLs.
    package var address: IPv4Address
    /// The interface DHCP is answered on; nil for every interface.
    package var interface: String?
    /// nil when off.
    package var tftp: HostPort?
    /// nil when off.
    package var http: HostPort?
    package var dhcp: DHCPSettings
    package var loaders: Loaders
    /// Absolute path of the folder where kiln keeps which hosts finished installing.
    package var stateDirectory: String
    package var hosts: [Host]

    package init(
        path: String, address: IPv4Address, interface: String? = nil, tftp: HostPort? = HostPort(host: "::", port: 69),
        http: HostPort? = HostPort(host: "::", port: 80), dhcp: DHCPSettings, loaders: Loaders = Loaders(),
        stateDirectory: String, hosts: [Host] = []
    ) {
        self.path = path
        self.address = address
        self.interface = interface
        self.tftp = tftp
        self.http = http
        self.dhcp = dhcp
        self.loaders = loaders
        self.stateDirectory = stateDirectory
        self.hosts = hosts
    }

    /// The known host with this MAC address.
    package func host(_ mac: MACAddress) -> Host? { hosts.first { $0.mac == mac } }

    /// The architectures of the lab's hosts.
    package var architectures: Set<BootArchitecture> { Set(hosts.map(\.arch)) }

    /// The known host with this name.
    package func host(named name: String) -> Host? { hosts.first { $0.name == name } }

    /// The base of every URL kiln hands out (`http://192.0.2.1:8080`), or nil when HTTP is off.
    package var httpBase: String? {
        guard let http else { return nil }
        return http.port == 80 ? "http://\(address)" : "http://\(address):\(http.port)"
    }
}
