import NetBoot

/// The installer one host boots: a kernel, an initrd and the kernel command line.
package struct InstallerBoot: Sendable, Equatable {
    /// Paths as served (relative to the boot root, the same over TFTP and HTTP).
    package var kernel: String
    package var initrd: String
    package var arguments: String

    package init(kernel: String, initrd: String, arguments: String) {
        self.kernel = kernel
        self.initrd = initrd
        self.arguments = arguments
    }
}

/// What a network-booting host is told to do.
package enum BootAction: Sendable, Equatable {
    /// Unknown hosts, and known ones that finished installing.
    case localDisk
    case install(name: String, InstallerBoot)
}

/// The per-host configuration files of the three boot loaders kiln hands out, as text.
package enum BootMenus {
    /// `pxelinux.cfg/01-<mac>` (and `pxelinux.cfg/default`). Paths are relative to pxelinux.0's folder,
    /// the boot root.
    package static func pxelinux(_ action: BootAction) -> String {
        switch action {
        case .localDisk:
            return """
                # kiln: boot the local disk
                DEFAULT local
                PROMPT 0
                TIMEOUT 10
                LABEL local
                  LOCALBOOT 0

                """
        case .install(let name, let boot):
            return """
                # kiln: install \(name)
                DEFAULT install
                PROMPT 0
                TIMEOUT 10
                LABEL install
                  KERNEL \(boot.kernel)
                  INITRD \(boot.initrd)
                  APPEND \(boot.arguments)
                LABEL local
                  LOCALBOOT 0

                """
        }
    }

    /// `grub.cfg-01-<mac>` for GRUB's network image. The kernel and initrd come over TFTP: Debian's
    /// signed grubnetx64 and grubnetaa64 have no `http` module built in, and a signed image loads no
    /// modules.
    /// - Parameter architecture: what the GRUB that reads it runs on (its disk's removable loader).
    package static func grub(
        _ action: BootAction, server: IPv4Address, architecture: BootArchitecture = .x86_64
    ) -> String {
        switch action {
        case .localDisk:
            // The disk's removable-media loader is started from here when a disk has one: firmware
            // keeps no boot entry for a disk that was blank when it last looked (OVMF went to its setup
            // screen after an image deploy), and an image written by kiln's agent registers none. `root`
            // must be the disk: the loader gets its device from it and finds its own files there.
            let loader = architecture.removableLoader
            return """
                # kiln: boot the local disk: its EFI loader, else back to the firmware's next boot entry
                set timeout=1
                menuentry "Local disk" {
                  if search --no-floppy --file --set=root \(loader); then
                    chainloader \(loader)
                    boot
                  fi
                  exit
                }

                """
        case .install(let name, let boot):
            let device = "(tftp,\(server))"
            return """
                # kiln: install \(name)
                set timeout=1
                set default=0
                menuentry "Install \(name)" {
                  echo "kiln: loading the installer for \(name)"
                  linux \(device)/\(boot.kernel) \(boot.arguments)
                  initrd \(device)/\(boot.initrd)
                }
                menuentry "Local disk" {
                  exit
                }

                """
        }
    }

    /// The `grub.cfg` that GRUB's network image reads first: it goes on to the file named after the
    /// booting NIC's MAC address, which kiln answers for every host (a local-disk menu for unknown ones).
    /// An arm64 GRUB asks for it in its platform folder (`arm64-efi/`), so that kiln knows which
    /// firmware is booting; x86-64 keeps the plain name.
    package static func grubEntry() -> String {
        """
        # kiln: on to this machine's own configuration
        if [ -n "${net_default_mac}" ]; then
          if [ "${grub_cpu}" = "\(BootArchitecture.aarch64.grubCPU)" ]; then
            configfile "${prefix}/${grub_cpu}-${grub_platform}/grub.cfg-${net_default_mac}"
          fi
          configfile "${prefix}/grub.cfg-${net_default_mac}"
        fi
        set timeout=1
        menuentry "Local disk" {
          exit
        }

        """
    }

    /// The iPXE script for a host; `httpBase` is `http://ADDR[:PORT]`.
    package static func ipxe(_ action: BootAction, httpBase: String) -> String {
        switch action {
        case .localDisk:
            return """
                #!ipxe
                echo kiln: booting the local disk
                exit

                """
        case .install(let name, let boot):
            // `initrd=` names the initrd for the EFI stub when iPXE itself runs under UEFI.
            let initrdName = boot.initrd.split(separator: "/").last.map(String.init) ?? boot.initrd
            return """
                #!ipxe
                echo kiln: installing \(name)
                kernel \(httpBase)/\(boot.kernel) initrd=\(initrdName) \(boot.arguments)
                initrd \(httpBase)/\(boot.initrd)
                boot

                """
        }
    }

    /// The script iPXE gets when DHCP could not name a host: it chains to the one for its own MAC.
    package static func ipxeEntry(httpBase: String) -> String {
        """
        #!ipxe
        chain \(httpBase)/ipxe/${net0/mac}

        """
    }
}
