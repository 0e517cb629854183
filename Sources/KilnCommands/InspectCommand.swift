import ArgumentParser
import DiskImage
import Foundation

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image's format, virtual size, allocated bytes and partitions."
    )

    @Argument(help: "The image.")
    var image: String

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @OptionGroup var input: InputImageOptions

    func validate() throws { try input.validate() }

    func run() async throws {
        let info: ImageInfo
        var table: PartitionTable?
        var data: UInt64?
        do {
            let reader = try input.open(image)
            info = reader.info
            // Without its backing file an overlay's guest bytes are unknown: only its header is shown.
            if info.backingFile == nil || info.backingFollowed {
                table = try PartitionTable.read(from: reader)
                data = try reader.dataRanges().reduce(0) { $0 + UInt64($1.count) }
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        if json {
            var object: [String: Any] = [
                "image": image, "format": info.format.rawValue, "virtual_size": info.virtualSize,
                "allocated_bytes": info.allocatedBytes, "file_size": info.fileSize, "compressed": info.compressed,
            ]
            if let data { object["data_bytes"] = data }
            if info.backingFile != nil {
                object["backing_followed"] = info.backingFollowed
                if let format = info.backingFormat { object["backing_format"] = format }
            }
            if let sub = info.subformat { object["subformat"] = sub.rawValue }
            if let cluster = info.clusterSize { object["cluster_size"] = cluster }
            if let backing = info.backingFile { object["backing_file"] = backing }
            if let table {
                object["partition_table"] = table.scheme.rawValue
                object["partitions"] = table.partitions.map { p in
                    ["number": p.number, "start": p.start, "size": p.size, "type": p.type, "name": p.name]
                        as [String: Any]
                }
            }
            let text = try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: text, as: UTF8.self))
            return
        }
        var lines = [
            "image: \(image)",
            "format: \(info.format.rawValue)" + (info.subformat.map { " (\($0.rawValue))" } ?? ""),
            "virtual size: \(human(info.virtualSize)) (\(info.virtualSize) bytes)",
            "file size: \(human(info.fileSize)), allocated on disk: \(human(info.allocatedBytes))",
        ]
        if let data { lines.append("data: \(human(data)) in allocated clusters") }
        if let cluster = info.clusterSize { lines.append("cluster size: \(cluster)") }
        if let backing = info.backingFile {
            let format = info.backingFormat.map { " (format \($0))" } ?? ""
            let followed = info.backingFollowed ? "" : "; not opened (--allow-backing reads through it)"
            lines.append("backing file: \(backing)\(format)\(followed)")
        }
        if info.backingFile != nil && !info.backingFollowed {
            lines.append("partition table: unknown (behind the backing file)")
        } else if let table {
            lines.append("partition table: \(table.scheme.rawValue)")
            for p in table.partitions {
                let name = p.name.isEmpty ? "" : " \"\(p.name)\""
                lines.append("  \(p.number): start \(p.start), size \(human(p.size)), type \(p.type)\(name)")
            }
        } else {
            lines.append("partition table: none")
        }
        print(lines.joined(separator: "\n"))
    }

    private func human(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
