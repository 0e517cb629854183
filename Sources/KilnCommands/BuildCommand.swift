import Appliance
import ArgumentParser
import BuildVM
import Builder
import DiskImage
import Foundation
import KilnSupport
import Packages

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build disk images from a description inside kiln's own QEMU guest.",
        discussion: """
            Resolves the description's packages into FILE.lock (or uses it with --locked), fetches \
            them into the cache ($KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln), unpacks them on the host, and \
            installs them onto a new disk inside kiln's builder guest. Writes DIR/NAME.FORMAT for each \
            format, manifest.json, NAME.packages and NAME.spdx.json. SOURCE_DATE_EPOCH, if set, \
            stamps the files kiln makes; otherwise the newest archive Release date in the lockfile does.
            """
    )

    @Argument(help: "The description.")
    var file: String

    @Option(
        name: [.short, .long],
        help: ArgumentHelp("Output directory (default: out/NAME).", valueName: "dir"))
    var output: String?

    @Option(
        help: """
            Comma-separated outputs: qcow2, raw, vmdk, vhd, vhdx, vdi, ova, gce, vagrant, libvirt (a domain \
            XML booting the qcow2; default: qcow2, or the \
            platform's: ova for vmware and virtualbox, vhdx for hyperv, raw for ec2, gce for gce).
            """)
    var format: String?

    @Option(
        help: """
            Build for a platform: vmware, virtualbox, hyperv, ec2 or gce. Adds its guest packages (open-vm-tools, \
            hyperv-daemons, cloud-init; the generic kernel for vmware and virtualbox) and runs its post list.
            """)
    var platform: String?

    @Option(help: "Build for this architecture whatever the description's hardware.arch says: x86_64 or aarch64.")
    var arch: Architecture?

    @Option(help: "auto (KVM unless it is unusable or failed on this host before, else TCG), kvm, or tcg.")
    var accel: Accelerator = .auto

    @Flag(help: "Forget what kiln remembers about KVM on this host and try it again.")
    var probeKvm = false

    @Flag(help: "Use FILE.lock as it is; fail if it does not answer the description.")
    var locked = false

    @Flag(help: "Use only the cache: no network.")
    var offline = false

    /// Where the host's apt sources are read from (tests point it elsewhere).
    @Option(name: .customLong("apt-sources"), help: .hidden)
    var aptSources = "/etc/apt"

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let formats = try parseFormats()
        let platform = try Self.parsePlatform(self.platform)
        let appliance = try ApplianceLoader.loadForCommand(file, arch: arch).forPlatform(platform)
        try Self.checkArchitecture(appliance, platform: platform, formats: formats, checkEmulator: true)
        let console = progress.console()
        Interruption.onInterrupt { RunningQEMU.killAll() }
        let started = ContinuousClock.now

        let request = try PackageRequest.forCommand(appliance, file: file, aptRoot: aptSources, platform: platform)
        let prepared: PackagePlan.Prepared
        do {
            prepared = try await request.prepare(
                lockPath: "\(file).lock", locked: locked, offline: offline,
                cache: PackageCache(root: KilnCache.root()), progress: console.sink)
        } catch {
            throw CommandFailure(error.description, hint: LockCommand.hint(for: error))
        }
        let lockfile = prepared.lockfile

        var options = ImageBuild.Options(
            outputDirectory: output ?? "out/\(appliance.name)", cacheDirectory: KilnCache.root())
        options.formats = formats
        options.accelerator = accel
        if probeKvm { KVMProbe.forget() }
        options.sourceDateEpoch = Self.sourceDateEpoch(lockfile)
        options.remoteFiles = prepared.files
        options.keepsLogOnFailure = { Interruption.received == nil }
        let build = ImageBuild(
            appliance: appliance, lockfile: lockfile, targetPackages: prepared.packages,
            builderPackages: prepared.builderPackages,
            aptSources: request.sources, options: options)
        let result: ImageBuild.Result
        do {
            result = try await build.run(progress: console.sink)
        } catch {
            var lines = ["kiln: error: \(file): \(error.message)"]
            if !error.consoleTail.isEmpty {
                lines.append("kiln: the builder guest's last lines:")
                lines += error.consoleTail.suffix(30).map { "  | \($0)" }
            }
            let log = "\(options.outputDirectory)/build.log"
            if FileManager.default.fileExists(atPath: log) { lines.append("kiln: the whole log: \(log)") }
            throw CommandFailure(lines: lines)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        for output in result.outputs {
            console.write("kiln: wrote \(output.path) (\(output.size / 1_048_576) MiB)")
        }
        let guest =
            result.accelerator.map { String(format: "guest %.1f s, %@", result.guestSeconds, $0.rawValue) }
            ?? "no builder guest"
        console.write(String(format: "kiln: built %@ in %.1f s (%@)", appliance.name, seconds, guest))
        console.write("kiln: the build's log: \(options.outputDirectory)/build.log")
        console.result(
            Result(
                appliance: appliance.name, manifest: result.manifest, log: "\(options.outputDirectory)/build.log",
                seconds: seconds, accelerator: result.accelerator?.rawValue ?? "none",
                outputs: result.outputs))
    }

    /// `kiln build --json`'s result: the images written, with the manifest and log beside them.
    struct Result: Encodable {
        let appliance: String
        let manifest: String
        let log: String
        let seconds: Double
        let accelerator: String
        let outputs: [ImageBuild.Output]
    }

    /// The --platform value, checked.
    static func parsePlatform(_ name: String?) throws -> Platform? {
        guard let name else { return nil }
        guard let platform = Platform(rawValue: name.lowercased()) else {
            throw ValidationError(
                "unknown platform '\(name)' (expected \(Platform.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        return platform
    }

    private func parseFormats() throws -> [BuildOutput] {
        let platform = try Self.parsePlatform(self.platform)
        let format = self.format ?? platform.map { PlatformPackages.defaultFormat(platform: $0.rawValue) } ?? "qcow2"
        var formats: [BuildOutput] = []
        for name in format.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            guard let output = BuildOutput(name: name) else {
                throw ValidationError(
                    "unknown format '\(name)'; kiln build writes \(BuildOutput.names.joined(separator: ", "))")
            }
            let built = output.forPlatform(platform?.rawValue)
            // The domain boots the qcow2 beside it.
            if built == .libvirt && !formats.contains(.disk(.qcow2)) { formats.append(.disk(.qcow2)) }
            if !formats.contains(built) { formats.append(built) }
        }
        guard !formats.isEmpty else { throw ValidationError("--format names no format") }
        return formats
    }

    /// SOURCE_DATE_EPOCH when set, else the newest Release date of the lockfile's archives.
    static func sourceDateEpoch(_ lockfile: Lockfile) -> Int64 {
        if let value = SourceDateEpoch.fromEnvironment() { return value }
        let dates = lockfile.archives.compactMap { Release.parseDate($0.date) }
        return Int64(dates.max()?.timeIntervalSince1970 ?? 0)
    }
}

extension Accelerator: ExpressibleByArgument {}

extension Architecture: ExpressibleByArgument {
    package init?(argument: String) {
        self.init(rawValue: argument)
    }
}
