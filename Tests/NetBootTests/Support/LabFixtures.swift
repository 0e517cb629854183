import Foundation

@testable import NetBoot

/// Lab files and descriptions written into a test's folder.
enum LabFixtures {
    static let debianDescription = """
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

    static let rockyDescription = """
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

    /// A lab with two known hosts (one Debian with a fixed address, one Rocky), in server mode.
    static func serverLab(address: String = "192.0.2.1", http: String = ":8080", tftp: String = ":69") -> String {
        """
        # a lab for tests
        address: \(address)
        tftp: "\(tftp)"
        http: "\(http)"
        dhcp:
          mode: server
          range: 192.0.2.100-192.0.2.110
          router: 192.0.2.1
          dns: [192.0.2.1]
          lease_time: 600
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
    static func write(_ lab: String, into folder: String) throws -> String {
        try debianDescription.write(toFile: folder + "/debian.yaml", atomically: true, encoding: .utf8)
        try rockyDescription.write(toFile: folder + "/rocky.yaml", atomically: true, encoding: .utf8)
        try "not a kernel\n".write(toFile: folder + "/vmlinuz", atomically: true, encoding: .utf8)
        try "not an initrd\n".write(toFile: folder + "/initrd.img", atomically: true, encoding: .utf8)
        let path = folder + "/lab.yaml"
        try lab.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
