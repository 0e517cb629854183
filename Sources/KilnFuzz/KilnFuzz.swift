import DiskImage
import Foundation
import NIOCore
import NetBoot

#if canImport(Glibc)
    import Glibc
#endif

/// Fuzz targets for kiln's parsers of untrusted input: every disk-image reader (through format
/// detection, as `kiln inspect` and `convert` open a file), the TFTP and DHCP packet codecs, the
/// HTTP request path (percent-decoding, the boot root's path rules, `Range` headers), and the text
/// readers (`FuzzTarget+Text.swift`): descriptions, lab files, kickstarts, and Debian's control files,
/// Packages indexes, apt sources, relations and versions.
///
/// Built with `-sanitize=fuzzer,address -D FUZZING` (`make fuzz`), this is a libFuzzer binary whose
/// target `KILN_FUZZ_TARGET` names (`disk`, `tftp`, `dhcp`, `http`, `description`, `lab`, `kickstart`,
/// `packages`). Built plainly, it replays files through
/// the same code: `kiln-fuzz TARGET FILE...` (how the suite runs the seed corpora and every crash found).
enum FuzzTarget: String, CaseIterable {
    case disk
    case tftp
    case dhcp
    case http
    case description
    case lab
    case kickstart
    case packages
    case archive

    func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .disk: FuzzTarget.disk(data)
        case .tftp: FuzzTarget.tftp(data)
        case .dhcp: FuzzTarget.dhcp(data)
        case .http: FuzzTarget.http(data)
        case .description: FuzzTarget.description(data)
        case .lab: FuzzTarget.lab(data)
        case .kickstart: FuzzTarget.kickstart(data)
        case .packages: FuzzTarget.packages(data)
        case .archive: FuzzTarget.archive(data)
        }
    }

    /// The bytes go to an in-memory file (tmpfs, unlinked at once) that the readers open by path, as
    /// they open any image.
    private static let memoryFile: Int32 = {
        let path = "/dev/shm/kiln-fuzz-\(getpid())"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        unlink(path)
        return fd
    }()

    static func disk(_ data: UnsafeRawBufferPointer) {
        guard memoryFile >= 0, ftruncate(memoryFile, 0) == 0 else { return }
        if let base = data.baseAddress, data.count > 0 {
            guard pwrite(memoryFile, base, data.count, 0) == data.count else { return }
        }
        do {
            let reader = try DiskImage.open("/proc/self/fd/\(memoryFile)")
            _ = try PartitionTable.read(from: reader)
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            for range in try reader.dataRanges().prefix(16) {
                try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: range.lowerBound) }
            }
            try buffer.withUnsafeMutableBytes { try reader.read(into: $0, at: reader.virtualSize / 2) }
        } catch {
            // An error is the right answer to most inputs; only a crash is a finding.
        }
    }

    static func tftp(_ data: UnsafeRawBufferPointer) {
        let buffer = ByteBuffer(bytes: data)
        guard let packet = try? TFTPPacket.decode(buffer) else { return }
        if case .readRequest(let request) = packet {
            _ = try? TFTPNegotiation.negotiate(request.options, transferSize: 1 << 20)
        }
        _ = try? TFTPPacket.decode(packet.encoded())
    }

    /// An empty boot root, for the path rules.
    private static let bootRoot: BootRoot? = {
        let path = "/dev/shm/kiln-fuzz-root-\(getpid())"
        mkdir(path, 0o700)
        return try? BootRoot(path)
    }()

    /// The first line is a request target, the second a `Range` header.
    static func http(_ data: UnsafeRawBufferPointer) {
        let lines = Array(data).split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
        let target = String(decoding: lines.first ?? [], as: UTF8.self)
        if let path = HTTPBootServer.decodePath(target), let bootRoot {
            _ = try? bootRoot.relativePath(for: Array(path.utf8))
        }
        if lines.count > 1 {
            let header = String(decoding: lines[1], as: UTF8.self)
            for size in [0, 1, 1000, Int.max] { _ = ByteRange.parse(header, size: size) }
        }
    }

    static func dhcp(_ data: UnsafeRawBufferPointer) {
        guard let message = try? DHCPMessage.decode(ByteBuffer(bytes: data)) else { return }
        _ = try? DHCPMessage.decode(message.encoded())
    }
}

#if FUZZING
    private nonisolated(unsafe) var selected: FuzzTarget = .disk

    @_cdecl("LLVMFuzzerInitialize")
    package func fuzzerInitialize(
        _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    ) -> Int32 {
        let name = ProcessInfo.processInfo.environment["KILN_FUZZ_TARGET"] ?? "disk"
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("kiln-fuzz: unknown KILN_FUZZ_TARGET '\(name)'\n".utf8))
            exit(2)
        }
        selected = target
        return 0
    }

    @_cdecl("LLVMFuzzerTestOneInput")
    package func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        selected.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    private func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    /// SwiftPM links an executable target's entry point under this name; libFuzzer's own driver runs
    /// from it.
    @_cdecl("kiln_fuzz_main")
    package func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
        var count = argc
        var vector = argv
        return runFuzzerDriver(&count, &vector) { data, size in fuzzerTestOneInput(data, size) }
    }
#else
    @main
    struct Replay {
        static func main() {
            let arguments = CommandLine.arguments.dropFirst()
            guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
                let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
                FileHandle.standardError.write(Data("usage: kiln-fuzz \(names) FILE...\n".utf8))
                exit(2)
            }
            for path in arguments.dropFirst() {
                guard let bytes = FileManager.default.contents(atPath: path) else {
                    FileHandle.standardError.write(Data("kiln-fuzz: cannot read \(path)\n".utf8))
                    exit(1)
                }
                bytes.withUnsafeBytes { target.run($0) }
            }
        }
    }
#endif

extension FuzzTarget {
    /// A tmpfs folder of this fuzzing process's own (`/dev/shm/kiln-fuzz-NAME-PID`), for targets
    /// that read their input from a file.
    static func scratchFolder(_ name: String) -> String {
        let path = "/dev/shm/kiln-fuzz-\(name)-\(getpid())"
        mkdir(path, 0o700)
        return path
    }
}
