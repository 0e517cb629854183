import Crypto
import Foundation

/// An OVF 1.0 descriptor (DMTF DSP0243 1.0) for one virtual system, in a vSphere or VirtualBox flavour.
public struct OVFDescriptor: Sendable {
    public enum Profile: String, Sendable {
        /// VMware vSphere/ESXi: LSI Logic SCSI, VMXNET3, vmx hardware family, `firmware` config for UEFI.
        case vsphere
        /// VirtualBox: SATA (AHCI) controller, E1000 NIC, virtualbox-2.2 hardware family.
        case virtualbox
    }

    public var machine: VirtualMachine
    public var profile: Profile
    /// The disks with the sizes of their files (as packed).
    public var disks: [(disk: ExportDisk, fileSize: UInt64)]

    public init(machine: VirtualMachine, profile: Profile, disks: [(disk: ExportDisk, fileSize: UInt64)]) {
        self.machine = machine
        self.profile = profile
        self.disks = disks
    }

    /// CIM operating system type (CIM_OperatingSystem.OSType) and VMware's guest id.
    var osType: (cim: Int, vmware: String, description: String) {
        switch machine.osFamily {
        case .debian: return (96, "debian11_64Guest", "Debian 64-bit")
        case .ubuntu: return (94, "ubuntu64Guest", "Ubuntu 64-bit")
        case .rhel, .rocky, .almalinux: return (80, "rhel9_64Guest", "Red Hat Enterprise Linux 64-bit")
        case .centos: return (107, "centos64Guest", "CentOS 64-bit")
        case .fedora: return (102, "fedora64Guest", "Fedora 64-bit")
        case .linux: return (102, "other5xLinux64Guest", "Linux 64-bit")
        }
    }

    /// The descriptor text.
    public var xml: String {
        let m = machine
        var x = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" \
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" \
            xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" \
            xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" \
            xmlns:vmw="http://www.vmware.com/schema/ovf" \
            xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
              <References>

            """
        for (i, entry) in disks.enumerated() {
            x +=
                "    <File ovf:href=\"\(esc(entry.disk.fileName))\" ovf:id=\"file\(i + 1)\" ovf:size=\"\(entry.fileSize)\"/>\n"
        }
        x += """
              </References>
              <DiskSection>
                <Info>Virtual disk information</Info>

            """
        for (i, entry) in disks.enumerated() {
            x +=
                "    <Disk ovf:capacity=\"\(entry.disk.capacity)\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk\(i + 1)\" "
            x +=
                "ovf:fileRef=\"file\(i + 1)\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n"
        }
        let network = profile == .vsphere ? "VM Network" : "NAT"
        let family = profile == .vsphere ? "vmx-13" : "virtualbox-2.2"
        x += """
              </DiskSection>
              <NetworkSection>
                <Info>The logical networks</Info>
                <Network ovf:name="\(network)">
                  <Description>The \(network) network</Description>
                </Network>
              </NetworkSection>
              <VirtualSystem ovf:id="\(esc(m.name))">
                <Info>A virtual machine built by kiln</Info>
                <Name>\(esc(m.name))</Name>
                <OperatingSystemSection ovf:id="\(osType.cim)"\(profile == .vsphere ? " vmw:osType=\"\(osType.vmware)\"" : "")>
                  <Info>The guest operating system</Info>
                  <Description>\(esc(osType.description))</Description>
                </OperatingSystemSection>
                <VirtualHardwareSection>
                  <Info>Virtual hardware requirements</Info>
                  <System>
                    <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
                    <vssd:InstanceID>0</vssd:InstanceID>
                    <vssd:VirtualSystemIdentifier>\(esc(m.name))</vssd:VirtualSystemIdentifier>
                    <vssd:VirtualSystemType>\(family)</vssd:VirtualSystemType>
                  </System>

            """
        // rasd elements appear in the CIM schema's (alphabetical) order. ResourceType values (CIM):
        // 3 processor, 4 memory, 6 SCSI controller, 10 Ethernet, 17 disk drive, 20 other storage (SATA).
        x += item([
            ("AllocationUnits", "hertz * 10^6"), ("Description", "Number of virtual CPUs"),
            ("ElementName", "\(m.cpus) virtual CPU(s)"), ("InstanceID", "1"), ("ResourceType", "3"),
            ("VirtualQuantity", "\(m.cpus)"),
        ])
        x += item([
            ("AllocationUnits", "byte * 2^20"), ("Description", "Memory size"),
            ("ElementName", "\(m.memoryMiB) MB of memory"), ("InstanceID", "2"), ("ResourceType", "4"),
            ("VirtualQuantity", "\(m.memoryMiB)"),
        ])
        if profile == .vsphere {
            x += item([
                ("Address", "0"), ("Description", "SCSI Controller"), ("ElementName", "SCSI Controller 0"),
                ("InstanceID", "3"), ("ResourceSubType", "lsilogic"), ("ResourceType", "6"),
            ])
        } else {
            x += item([
                ("Address", "0"), ("Description", "SATA Controller"), ("ElementName", "SATA Controller 0"),
                ("InstanceID", "3"), ("ResourceSubType", "AHCI"), ("ResourceType", "20"),
            ])
        }
        var instance = 4
        for (i, _) in disks.enumerated() {
            x += item([
                ("AddressOnParent", "\(i)"), ("ElementName", "Hard Disk \(i + 1)"),
                ("HostResource", "ovf:/disk/vmdisk\(i + 1)"), ("InstanceID", "\(instance)"), ("Parent", "3"),
                ("ResourceType", "17"),
            ])
            instance += 1
        }
        x += item([
            ("AddressOnParent", "\(profile == .vsphere ? 7 : 0)"), ("AutomaticAllocation", "true"),
            ("Connection", network), ("Description", "Network adapter"), ("ElementName", "Ethernet 1"),
            ("InstanceID", "\(instance)"), ("ResourceSubType", profile == .vsphere ? "VmxNet3" : "E1000"),
            ("ResourceType", "10"),
        ])
        if profile == .vsphere {
            x +=
                "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"\(m.firmware == .uefi ? "efi" : "bios")\"/>\n"
        }
        x += """
                </VirtualHardwareSection>
                <ProductSection>
                  <Info>Information about the appliance</Info>
                  <Product>\(esc(m.summary.isEmpty ? m.name : m.summary))</Product>
                  <Vendor>kiln</Vendor>
                  <Version>\(esc(m.version))</Version>
                </ProductSection>
              </VirtualSystem>
            </Envelope>

            """
        return x
    }

    private func item(_ fields: [(String, String)]) -> String {
        var x = "      <Item>\n"
        for (name, value) in fields { x += "        <rasd:\(name)>\(esc(value))</rasd:\(name)>\n" }
        return x + "      </Item>\n"
    }

    private func esc(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
