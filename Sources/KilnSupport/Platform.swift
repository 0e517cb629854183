/// A hypervisor or cloud an image is made for (`kiln build --platform`, a description's `post` lists).
/// What each one needs lives with the module that knows about it: its packages in Builder, its
/// export format and OVF flavour in DiskImage.
package enum Platform: String, Sendable, CaseIterable {
    case vmware, virtualbox, hyperv, ec2, gce
}

/// The firmware a machine starts with.
package enum Firmware: String, Sendable, CaseIterable {
    /// SeaBIOS under QEMU; BIOS in an exported machine.
    case bios
    /// OVMF (AAVMF on arm64) under QEMU, with a private copy of its variable store; EFI in an export.
    case uefi
}
