import Foundation

/// Lab files and descriptions written into a test's folder.
package enum LabFixtures {
    package static let debianDescription = """
        name: lab-debian
        os:
          name: debian
          version: "12"
          password: kiln
        hardware:
          partitions:
            "/":
              size: 4GiB
        packages: [openssh-server]
        console: ttyS0,115200

        """

    /// The same host on Debian 13 (trixie), which boots trixie's netboot installer.
    package static let debian13Description = debianDescription.replacingOccurrences(
        of: "version: \"12\"", with: "version: \"13\"")

    package static let rockyDescription = """
        name: lab-rocky
        os:
          name: rocky
          version: "9"
          password: kiln
        hardware:
          partitions:
            "/":
              size: 4GiB

        """

    /// The `dhcp` block of the tests' labs: 192.0.2.100-110 handed out for 600 s, with kiln (192.0.2.1) as
    /// router and DNS server.
    package static func dhcpBlock(mode: String = "server") -> String {
        """
        dhcp:
          mode: \(mode)
          range: 192.0.2.100-192.0.2.110
          router: 192.0.2.1
          dns: [192.0.2.1]
          lease_time: 600
        """
    }

    /// The lab of the network-namespace tests: kiln at 192.0.2.1 on `interface`, TFTP on port 69, DHCP in
    /// `mode`, and lab-07 (Debian, fixed address 192.0.2.17) followed by `moreHosts` (YAML list items).
    package static func namespaceLab(interface: String, http: String, mode: String = "server", moreHosts: String = "")
        -> String
    {
        """
        address: 192.0.2.1
        interface: \(interface)
        tftp: ":69"
        http: "\(http)"
        \(dhcpBlock(mode: mode))
        hosts:
          - mac: "52:54:00:12:34:56"
            name: lab-07
            description: debian.yaml
            address: 192.0.2.17
        \(moreHosts)
        """
    }

    /// A lab with two known hosts (one Debian with a fixed address, one Rocky), in server mode.
    package static func serverLab(address: String = "192.0.2.1", http: String = ":8080", tftp: String = ":69") -> String
    {
        """
        # a lab for tests
        address: \(address)
        tftp: "\(tftp)"
        http: "\(http)"
        \(dhcpBlock())
        boot_loaders:
          bios: pxelinux
          uefi: grub
        hosts:
          - mac: "52:54:00:12:34:56"
            name: lab-07
            description: debian.yaml
            address: 192.0.2.17
          - mac: 52-54-00-AB-CD-EF
            name: lab-08
            description: rocky.yaml
            installer:
              kernel: vmlinuz
              initrd: initrd.img

        """
    }

    /// Writes the descriptions and `lab.yaml` into `folder` and returns the lab file's path.
    @discardableResult
    package static func write(_ lab: String, into folder: String) throws -> String {
        try debianDescription.write(toFile: folder + "/debian.yaml", atomically: true, encoding: .utf8)
        try debian13Description.write(toFile: folder + "/debian13.yaml", atomically: true, encoding: .utf8)
        try rockyDescription.write(toFile: folder + "/rocky.yaml", atomically: true, encoding: .utf8)
        try "not a kernel\n".write(toFile: folder + "/vmlinuz", atomically: true, encoding: .utf8)
        try "not an initrd\n".write(toFile: folder + "/initrd.img", atomically: true, encoding: .utf8)
        let path = folder + "/lab.yaml"
        try lab.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
