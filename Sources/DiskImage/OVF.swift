import Crypto
import Foundation
import KilnSupport

/// An OVF 1.0 descriptor (DMTF DSP0243 1.0) for one virtual system, in a vSphere or VirtualBox flavour.
package struct OVFDescriptor: Sendable {
    package enum Profile: String, Sendable {
        /// VMware vSphere/ESXi: paravirtual SCSI (PVSCSI), VMXNET3, vmx hardware family, `firmware` config
        /// for UEFI.
        case vsphere
        /// VirtualBox: SATA (AHCI) controller, E1000 NIC, virtualbox-2.2 hardware family, and the
        /// machine again in VirtualBox's own settings format (`vbox:Machine`), which is where VirtualBox
        /// reads the firmware from, as its own exports do.
        case virtualbox
    }

    package var machine: VirtualMachine
    package var profile: Profile
    /// The disks with the sizes of their files (as packed).
    package var disks: [(disk: ExportDisk, fileSize: UInt64)]

    package init(machine: VirtualMachine, profile: Profile, disks: [(disk: ExportDisk, fileSize: UInt64)]) {
        self.machine = machine
        self.profile = profile
        self.disks = disks
    }

    /// CIM operating system type (CIM_OperatingSystem.OSType) and VMware's guest id. CIM has no
    /// types by processor: an arm64 machine keeps its family's number, says "ARM 64-bit" in the
    /// description and gets no VMware guest id (VMware's ids name x86 guests).
    var osType: (cim: Int, vmware: String?, description: String) {
        let x86 = x86OSType
        guard machine.arch == .aarch64 else { return x86 }
        return (x86.cim, nil, x86.description.replacingOccurrences(of: "64-bit", with: "ARM 64-bit"))
    }

    private var x86OSType: (cim: Int, vmware: String?, description: String) {
        switch machine.osFamily {
        case .debian: return (96, "debian11_64Guest", "Debian 64-bit")
        case .ubuntu: return (94, "ubuntu64Guest", "Ubuntu 64-bit")
        case .rhel, .rocky, .almalinux: return (80, "rhel9_64Guest", "Red Hat Enterprise Linux 64-bit")
        case .centos: return (107, "centos64Guest", "CentOS 64-bit")
        case .fedora: return (102, "fedora64Guest", "Fedora 64-bit")
        case .linux: return (102, "other5xLinux64Guest", "Linux 64-bit")
        }
    }

    /// VirtualBox's guest OS type id.
    var vboxOSType: String {
        switch machine.osFamily {
        case .debian: return "Debian_64"
        case .ubuntu: return "Ubuntu_64"
        case .rhel, .rocky, .almalinux, .centos: return "RedHat_64"
        case .fedora: return "Fedora_64"
        case .linux: return "Linux26_64"
        }
    }

    /// UUIDs VirtualBox keys machines and disks by, derived from the machine so that the same build gives
    /// the same descriptor.
    func vboxUUID(_ what: String) -> String {
        let identity = ImageIdentity(seed: "ovf\u{0}\(machine.name)\u{0}\(machine.version)")
        return "{" + identity.guid(what).description.lowercased() + "}"
    }

    /// The descriptor text.
    package var xml: String {
        let m = machine
        var x = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" \
            xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" \
            xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" \
            xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" \
            xmlns:vmw="http://www.vmware.com/schema/ovf" \
            xmlns:vbox="http://www.virtualbox.org/ovf/machine" \
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
                "ovf:fileRef=\"file\(i + 1)\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\""
            x += profile == .virtualbox ? " vbox:uuid=\"\(vboxUUID("disk \(i + 1)"))\"/>\n" : "/>\n"
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
                <OperatingSystemSection ovf:id="\(osType.cim)"\(profile == .vsphere ? osType.vmware.map { " vmw:osType=\"\($0)\"" } ?? "" : "")>
                  <Info>The guest operating system</Info>
                  <Description>\(esc(osType.description))</Description>
            \(profile == .virtualbox ? "      <vbox:OSType ovf:required=\"false\">\(vboxOSType)</vbox:OSType>\n" : "")\
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
            // "VirtualSCSI" is VMware's paravirtual SCSI controller: Debian's cloud and generic kernels
            // both drive it (vmw_pvscsi), while LSI Logic's (mptspi) is missing from the cloud kernel,
            // and QEMU emulates PVSCSI, so `kiln test --machine vmware` boots the disk as ESXi will.
            x += item([
                ("Address", "0"), ("Description", "SCSI Controller"), ("ElementName", "SCSI Controller 0"),
                ("InstanceID", "3"), ("ResourceSubType", "VirtualSCSI"), ("ResourceType", "6"),
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
            \(profile == .virtualbox ? vboxMachine : "")\
              </VirtualSystem>
            </Envelope>

            """
        return x
    }

    /// The machine in VirtualBox's settings format (its `.vbox` file's Machine element): VirtualBox's
    /// importer takes this over the generic section when present, and only here can it learn the
    /// firmware. The disks are attached by the `vbox:uuid` the DiskSection gives them.
    var vboxMachine: String {
        let m = machine
        var x = """
                <vbox:Machine ovf:required="false" version="1.16-linux" uuid="\(vboxUUID("machine"))" \
            name="\(esc(m.name))" OSType="\(vboxOSType)">
                  <ovf:Info>Complete VirtualBox machine configuration in VirtualBox format</ovf:Info>
                  <Hardware>
                    <CPU count="\(m.cpus)">
                      <PAE enabled="true"/>
                      <LongMode enabled="true"/>
                    </CPU>
                    <Memory RAMSize="\(m.memoryMiB)"/>
                    <Firmware type="\(m.firmware == .uefi ? "EFI" : "BIOS")"/>
                    <Boot>
                      <Order position="1" device="HardDisk"/>
                    </Boot>
                    <BIOS>
                      <IOAPIC enabled="true"/>
                    </BIOS>
                    <Network>
                      <Adapter slot="0" enabled="true" type="82540EM">
                        <NAT/>
                      </Adapter>
                    </Network>
                    <UART>
                      <Port slot="0" enabled="false" IOBase="0x3f8" IRQ="4" hostMode="Disconnected"/>
                    </UART>
                    <RTC localOrUTC="UTC"/>
                    <StorageControllers>
                      <StorageController name="SATA" type="AHCI" PortCount="\(max(1, disks.count))" \
            useHostIOCache="false" Bootable="true">

            """
        for i in disks.indices {
            x += """
                            <AttachedDevice type="HardDisk" hotpluggable="false" port="\(i)" device="0">
                              <Image uuid="\(vboxUUID("disk \(i + 1)"))"/>
                            </AttachedDevice>

                """
        }
        x += """
                      </StorageController>
                    </StorageControllers>
                  </Hardware>
                </vbox:Machine>

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
