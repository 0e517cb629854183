import DiskImage

extension DiskLayout {
    /// Makes `slot`'s empty FAT32 file system (the ESP, or a description's vfat partition) in the disk
    /// file at `path`, as the guest's `mkfs.fat -F 32 -i ID -n LABEL` did: the slot's volume id, its label
    /// in upper case, the partition's start as hidden sectors, the label's times at `sourceDateEpoch`.
    package func formatFAT(_ slot: Slot, into path: String, sourceDateEpoch: Int64) throws(BuilderError) {
        guard slot.filesystem == .vfat, let id = slot.filesystemID else {
            throw BuilderError("\(slot.role): not a vfat partition")
        }
        guard slot.encryptionID == nil else {
            throw BuilderError("\(slot.role): its file system is inside a LUKS container, made in the guest")
        }
        let formatter = FAT32Formatter(
            volumeID: id, label: slot.label, hiddenSectors: UInt64(slot.startMiB * 2048), timestamp: sourceDateEpoch)
        do {
            try formatter.format(path: path, offset: UInt64(slot.startMiB) << 20, length: UInt64(slot.sizeMiB) << 20)
        } catch {
            throw BuilderError("\(slot.role): cannot make its FAT32 file system: \(error)")
        }
    }
}
