import ArgumentParser
import DiskImage
import Foundation
import KilnSupport

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
            let report = Report(
                image: image, format: info.format.rawValue, virtualSize: info.virtualSize,
                allocatedBytes: info.allocatedBytes, fileSize: info.fileSize, compressed: info.compressed,
                dataBytes: data, subformat: info.subformat?.rawValue, clusterSize: info.clusterSize,
                backingFile: info.backingFile, backingFormat: info.backingFormat,
                backingFollowed: info.backingFile == nil ? nil : info.backingFollowed,
                partitionTable: table?.scheme.rawValue,
                partitions: table?.partitions.map {
                    .init(number: $0.number, start: $0.start, size: $0.size, type: $0.type, name: $0.name)
                })
            let text = try KilnJSON.encoder().encode(report)
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

    /// `kiln inspect --json`: what the image's header and partition table say. Keys without a value
    /// for this image (a raw file's cluster size, a backing file it has not) are left out.
    struct Report: Encodable {
        struct Partition: Encodable {
            let number: Int
            let start: UInt64
            let size: UInt64
            let type: String
            let name: String
        }

        let image: String
        let format: String
        let virtualSize: UInt64
        let allocatedBytes: UInt64
        let fileSize: UInt64
        let compressed: Bool
        let dataBytes: UInt64?
        let subformat: String?
        let clusterSize: Int?
        let backingFile: String?
        let backingFormat: String?
        let backingFollowed: Bool?
        let partitionTable: String?
        let partitions: [Partition]?

        enum CodingKeys: String, CodingKey {
            case image, format, compressed, subformat, partitions
            case virtualSize = "virtual_size"
            case allocatedBytes = "allocated_bytes"
            case fileSize = "file_size"
            case dataBytes = "data_bytes"
            case clusterSize = "cluster_size"
            case backingFile = "backing_file"
            case backingFormat = "backing_format"
            case backingFollowed = "backing_followed"
            case partitionTable = "partition_table"
        }
    }
}
