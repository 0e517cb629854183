import DiskImage

extension DiskLayout {
    /// The table that `sfdiskScript` describes, for DiskImage's writer.
    package var partitionTable: GPTWriter {
        GPTWriter(
            diskGUID: diskGUID, firstUsableLBA: UInt64(Self.leadMiB * 2048),
            partitions: slots.map { slot in
                GPTPartition(
                    typeGUID: slot.typeGUID, partitionGUID: slot.partitionGUID, firstLBA: UInt64(slot.startMiB * 2048),
                    sectorCount: UInt64(slot.sizeMiB * 2048), name: slot.label)
            })
    }

    /// Writes the partition table into the disk file at `path`, which must already be `sizeMiB` MiB:
    /// the bytes sfdisk writes for `sfdiskScript`, and nothing outside the table's sectors.
    package func writePartitionTable(to path: String) throws(BuilderError) {
        do {
            try partitionTable.write(to: path, diskSize: UInt64(sizeMiB) << 20)
        } catch {
            throw BuilderError("cannot write the partition table: \(error)")
        }
    }
}
