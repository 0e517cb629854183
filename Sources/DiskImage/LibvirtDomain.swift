/// A libvirt domain definition (libvirt's "Domain XML format") that boots an exported image.
public struct LibvirtDomain: Sendable {
    public var machine: VirtualMachine
    /// The disk image's path as the libvirt host will see it.
    public var diskPath: String
    public var diskFormat: ImageFormat

    public init(machine: VirtualMachine, diskPath: String, diskFormat: ImageFormat) {
        self.machine = machine
        self.diskPath = diskPath
        self.diskFormat = diskFormat
    }

    public var xml: String {
        let m = machine
        let os =
            m.firmware == .uefi
            ? "  <os firmware=\"efi\">\n    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n    <boot dev=\"hd\"/>\n  </os>\n"
            : "  <os>\n    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n    <boot dev=\"hd\"/>\n  </os>\n"
        return """
            <domain type="kvm">
              <name>\(esc(m.name))</name>
              <description>\(esc(m.summary.isEmpty ? "built by kiln" : m.summary))</description>
              <memory unit="MiB">\(m.memoryMiB)</memory>
              <vcpu>\(m.cpus)</vcpu>
            \(os)  <features>
                <acpi/>
                <apic/>
              </features>
              <cpu mode="host-model"/>
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
