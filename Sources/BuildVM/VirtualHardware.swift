/// The virtual hardware a disk image is booted on: the disk controller and network card a
/// hypervisor presents, as far as QEMU emulates them (`kiln test --machine`).
package enum VirtualHardware: String, Sendable, CaseIterable {
    /// virtio-blk disk, no network card: KVM/QEMU, and kiln's builder guest.
    case virtio
    /// VMware ESXi/Workstation: paravirtual SCSI (PVSCSI) disk, VMXNET3 network card.
    case vmware
    /// VirtualBox: SATA disk on an AHCI controller, Intel E1000 network card.
    case virtualbox
    /// Hyper-V generation 1 as QEMU can present it: an i440FX machine with the disk on its PIIX IDE
    /// controller, the device Hyper-V's firmware boots from. QEMU emulates no VMBus, so Hyper-V's
    /// synthetic SCSI and network devices are not there.
    case hyperv

    /// How the disks are attached.
    enum DiskBus: Sendable { case virtio, pvscsi, ahci, ide }

    var diskBus: DiskBus {
        switch self {
        case .virtio: return .virtio
        case .vmware: return .pvscsi
        case .virtualbox: return .ahci
        case .hyperv: return .ide
        }
    }

    /// QEMU's machine type: q35 (PCIe, ICH9 with its AHCI controller), or i440FX (`pc`) for the
    /// PIIX IDE controller.
    var machineType: String { self == .hyperv ? "pc" : "q35" }

    /// QEMU's device for the network card, if there is one.
    var networkCard: String? {
        switch self {
        case .vmware: return "vmxnet3"
        case .virtualbox: return "e1000"
        case .virtio, .hyperv: return nil
        }
    }

    /// What the guest sees, for messages.
    package var summary: String {
        switch self {
        case .virtio: return "virtio-blk disk, no network card"
        case .vmware: return "PVSCSI disk, VMXNET3 network card"
        case .virtualbox: return "AHCI SATA disk, E1000 network card"
        case .hyperv: return "PIIX IDE disk, no network card"
        }
    }
}
