import KilnSupport

/// A libvirt domain definition (libvirt's "Domain XML format") that boots an exported image.
package struct LibvirtDomain: Sendable {
    package var machine: VirtualMachine
    /// The disk image's path as the libvirt host will see it.
    package var diskPath: String
    package var diskFormat: ImageFormat

    package init(machine: VirtualMachine, diskPath: String, diskFormat: ImageFormat) {
        self.machine = machine
        self.diskPath = diskPath
        self.diskFormat = diskFormat
    }

    package var xml: String {
        let m = machine
        // arm64 machines are QEMU's `virt` board booted by UEFI (AAVMF), with the host's own CPU: libvirt
        // has no host-model CPU for them, and they have a GIC where PCs have an APIC.
        let (arch, board) = m.arch == .aarch64 ? ("aarch64", "virt") : ("x86_64", "q35")
        let type = "    <type arch=\"\(arch)\" machine=\"\(board)\">hvm</type>\n    <boot dev=\"hd\"/>\n"
        let os: String
        if m.arch == .aarch64 {
            // UEFI only; the loader and variable store as Debian's qemu-efi-aarch64 installs them.
            os =
                "  <os>\n\(type)    <loader readonly=\"yes\" type=\"pflash\">\(Architecture.aarch64.uefiFirmware.code)</loader>\n"
                + "    <nvram template=\"\(Architecture.aarch64.uefiFirmware.variables)\"/>\n  </os>\n"
        } else {
            os = m.firmware == .uefi ? "  <os firmware=\"efi\">\n\(type)  </os>\n" : "  <os>\n\(type)  </os>\n"
        }
        let features = m.arch == .aarch64 ? "    <acpi/>\n    <gic version=\"3\"/>\n" : "    <acpi/>\n    <apic/>\n"
        let cpu = m.arch == .aarch64 ? "host-passthrough" : "host-model"
        return """
            <domain type="kvm">
              <name>\(esc(m.name))</name>
              <description>\(esc(m.summary.isEmpty ? "built by kiln" : m.summary))</description>
              <memory unit="MiB">\(m.memoryMiB)</memory>
              <vcpu>\(m.cpus)</vcpu>
            \(os)  <features>
            \(features)  </features>
              <cpu mode="\(cpu)"/>
              <clock offset="utc"/>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>restart</on_reboot>
              <on_crash>destroy</on_crash>
              <devices>
                <disk type="file" device="disk">
                  <driver name="qemu" type="\(diskFormat.qemuName)"/>
                  <source file="\(esc(diskPath))"/>
                  <target dev="vda" bus="virtio"/>
                </disk>
                <interface type="network">
                  <source network="default"/>
                  <model type="virtio"/>
                </interface>
                <serial type="pty">
                  <target port="0"/>
                </serial>
                <console type="pty">
                  <target type="serial" port="0"/>
                </console>
                <rng model="virtio">
                  <backend model="random">/dev/urandom</backend>
                </rng>
              </devices>
            </domain>

            """
    }

    private func esc(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
