import Appliance
import BuildVM
import Crypto
import DiskImage
import Foundation
import KilnSupport
import Packages
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The build pipeline after packages are locked and fetched: assemble the builder guest, unpack
/// the target's packages on the host, install in the guest, and write the requested formats with
/// a manifest, a package list and an SBOM (SPEC, "How an image is built", steps 4 to 7).
package struct ImageBuild: Sendable {
    package struct Options: Sendable {
        package var outputDirectory: String
        package var formats: [BuildOutput] = [.disk(.qcow2)]
        package var accelerator: Accelerator = .auto
        package var sourceDateEpoch: Int64 = 0
        package var cacheDirectory: String
        /// Guest memory; the packages stream from the input disk, so it need not hold them.
        package var guestMemoryMiB = 1024
        /// The cached copy of each file the description names by URL (`PackagePlan.Prepared.files`).
        package var remoteFiles: [String: String] = [:]
        /// Whether a failed build still writes its `build.log`: not when the person stopped it (a
        /// signal), whose command leaves nothing behind.
        package var keepsLogOnFailure: @Sendable () -> Bool = { true }

        package init(outputDirectory: String, cacheDirectory: String) {
            self.outputDirectory = outputDirectory
            self.cacheDirectory = cacheDirectory
        }
    }

    /// One image written; `kiln build --json` prints these as they are.
    package struct Output: Sendable, Encodable {
        package var path: String
        /// `qcow2`, `raw`, ..., `ova`, `gce`, `vagrant`.
        package var format: String
        package var size: Int64
        package var sha256: String
    }

    package struct Result: Sendable {
        package var outputs: [Output]
        package var manifest: String
        package var accelerator: Accelerator
        package var guestSeconds: Double
    }

    package let appliance: Appliance
    package let lockfile: Lockfile
    package let targetPackages: [LocalPackage]
    package let builderPackages: [LocalPackage]
    package let aptSources: [ArchiveSource]
    package let options: Options

    package init(
        appliance: Appliance, lockfile: Lockfile, targetPackages: [LocalPackage], builderPackages: [LocalPackage],
        aptSources: [ArchiveSource], options: Options
    ) {
        self.appliance = appliance
        self.lockfile = lockfile
        self.targetPackages = targetPackages
        self.builderPackages = builderPackages
        self.aptSources = aptSources
        self.options = options
    }

    /// Runs the build; outputs appear in the output directory only when everything succeeded, and
    /// `build.log` (see `BuildLog`) in any case once that directory exists.
    package func run(progress: ProgressSink) async throws(BuilderError) -> Result {
        let log = BuildLog()
        let sink = log.recording(to: progress)
        do {
            let result = try await build(progress: sink, log: log)
            log.write(to: options.outputDirectory, outcome: "built \(appliance.name)", progress: progress)
            return result
        } catch {
            if options.keepsLogOnFailure() && FileManager.default.fileExists(atPath: options.outputDirectory) {
                log.write(to: options.outputDirectory, outcome: "failed: \(error.message)", progress: progress)
            }
            throw error
        }
    }

    private func build(progress: ProgressSink, log: BuildLog) async throws(BuilderError) -> Result {
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw BuilderError("cannot create \(options.outputDirectory): \(error.localizedDescription)")
        }
        // A killed build's work folder (no mounts: privileged work happens in the guest) goes first.
        AtomicOutput.removeLeftovers(in: options.outputDirectory, prefix: ".kiln-build-")
        let work = "\(options.outputDirectory)/.kiln-build-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try files.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            throw BuilderError("cannot create \(work): \(error.localizedDescription)")
        }
        AtomicOutput.registerScratchDirectory(work)
        var consoleLogs: [String] = []
        defer {
            log.keepConsole(from: consoleLogs)
            try? files.removeItem(atPath: work)
            AtomicOutput.unregisterScratchDirectory(work)
        }

        // GNU tar makes and reads the configured base; a lockfile from before it was a builder
        // package has none, and its builds configure every time.
        let canKeepBase = builderPackages.contains { $0.package.name == "tar" }
        let architecture = appliance.hardware.arch
        let recipe = FilesystemTools.needed(by: appliance.hardware.partitions, architecture: architecture)
            .recipe(
                packages: builderPackages.map(\.path), extraPrograms: canKeepBase ? ["tar"] : [], sourceDateEpoch: 0,
                architecture: architecture)
        let guest: BuilderGuest
        do {
            guest = try BuilderGuest.prepare(recipe, cacheDirectory: options.cacheDirectory, progress: progress)
        } catch {
            throw BuilderError("cannot assemble the builder guest: \(error)")
        }

        let layout = try DiskLayout(hardware: appliance.hardware, seed: seed)
        let bases = BaseCache(cacheDirectory: options.cacheDirectory)
        let baseKey = canKeepBase ? baseCacheKey(layout) : nil
        let rootTar = "\(work)/root.tar"
        let root: TargetRoot
        var base = InstallJob.Base.configure
        if let baseKey, let cached = bases.lookup(baseKey) {
            progress(
                .info(
                    "base",
                    "reusing the configured base \(baseKey.prefix(12)) from the cache: packages are not configured again"
                ))
            root = try TargetRoot.describe(debs: targetPackages.map(\.path), architecture: architecture.debianName)
            base = .reuse(cached)
        } else {
            progress(.step("unpack", "unpacking \(targetPackages.count) packages on the host"))
            root = try TargetRoot.write(
                debs: targetPackages.map(\.path), architecture: architecture.debianName, to: rootTar,
                modificationTime: options.sourceDateEpoch)
            if baseKey != nil { base = .configureAndSave }
        }
        // Plain ext4 file systems are laid out here, natively, before the guest starts. On a
        // lockfile's first build the guest configures the packages the host wrote, saves the
        // configured base and stops; the build then goes on from that base in a second run, as
        // every rebuild does, so that both make the same disk.
        let fileSystemLayout = BaseFileSystems(layout: layout)
        let raw = "\(work)/disk.raw"
        // The guest sends each ext file system's tree back on this disk (see ReproducibleFileSystems).
        let fileSystems = "\(work)/filesystems.raw"
        var runBase = base
        var run: GuestRunResult
        var accelerator = options.accelerator
        var guestSeconds = 0.0
        var runs = 0
        while true {
            runs += 1
            var install = InstallJob(
                appliance: appliance, layout: layout, root: root, rootTar: rootTar, aptSources: targetSources,
                sourceDateEpoch: options.sourceDateEpoch)
            install.base = runBase
            install.remoteFiles = options.remoteFiles
            if let baseKey, case .reuse = runBase { install.cachedInitramfs = bases.initramfs(baseKey) }
            var prewrite: (tar: String, fileSystems: BaseFileSystems)?
            if let fileSystemLayout {
                switch runBase {
                case .reuse(let tar): prewrite = (tar, fileSystemLayout)
                case .configureAndSave:
                    prewrite = (rootTar, fileSystemLayout)
                    install.stopsAfterBase = true
                case .configure: break
                }
                if prewrite != nil { install.prewritten = fileSystemLayout.numbers }
            }
            let job = try install.guestJob(workDirectory: work)
            // Where the guest writes the configured base and the initramfs made on it: at most what
            // the target disk holds, plus the tars' headers and 1 GiB (sparse: only what is written
            // takes space).
            let output = baseKey == nil ? nil : "\(work)/output-\(runs).raw"
            if let output {
                try Self.createSparse(output, mib: (runBase == .configureAndSave ? layout.sizeMiB : 0) + 1024)
            }
            // Fresh disks for each run: nothing a first run left in free space may reach the image.
            for disk in [raw, fileSystems] { try Self.createSparse(disk, mib: layout.sizeMiB) }
            if let prewrite {
                let what = runBase == .configureAndSave ? "the unpacked packages" : "the configured base"
                progress(.step("base", "writing \(what) into the file systems on the host"))
                let summaries = try prewrite.fileSystems.write(
                    base: prewrite.tar, into: raw, sourceDateEpoch: options.sourceDateEpoch)
                let mib = summaries.reduce(0) { $0 + ($1.blocks - $1.freeBlocks) * 4096 } / 1_048_576
                progress(.info("base", "wrote \(summaries.count) ext4 file system(s) from \(what): \(mib) MiB"))
            }
            var runOptions = GuestRunOptions()
            runOptions.accelerator = accelerator
            runOptions.memoryMiB = options.guestMemoryMiB
            let consoleLog = "\(work)/guest-\(runs).log"
            runOptions.consoleLog = consoleLog
            consoleLogs.append(consoleLog)
            // What the guest's programs read from the clock starts at the same second in every build.
            runOptions.clockStart = Int(options.sourceDateEpoch)
            do {
                run = try await GuestRunner(guest: guest, options: runOptions)
                    .run(
                        job, targetDisk: raw, fileSystemDisk: fileSystems, outputDisk: output, workDirectory: work,
                        progress: progress)
            } catch {
                throw BuilderError(error.message, consoleTail: error.consoleTail)
            }
            accelerator = run.accelerator
            let elapsed = run.elapsed.components
            guestSeconds += Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            guard let output, let baseKey else { break }
            // The initramfs first: keeping the base moves the output disk into the cache.
            keepInitramfs(output, key: baseKey, run: run, progress: progress)
            guard runBase == .configureAndSave else { break }
            keepBase(output, key: baseKey, run: run, progress: progress)
            // A guest that could not save the base (packages wrote to the ESP) finished the job.
            guard install.stopsAfterBase, try !reports(BaseReport.self, of: run).isEmpty else { break }
            // One not kept (a warning said why) is on the output disk still, a tar from its start.
            runBase = .reuse(bases.lookup(baseKey) ?? output)
            unlink(rootTar)
        }
        unlink(rootTar)
        progress(.step("settle", "writing the file systems into place"))
        let trees = Dictionary(
            try reports(ReproducibleFileSystems.TreeReport.self, of: run).map { ($0.partition, $0.tree) },
            uniquingKeysWith: { _, last in last })
        try ReproducibleFileSystems.finish(
            raw: raw, fileSystemDisk: fileSystems, layout: layout, trees: trees, base: runBase.tar,
            sourceDateEpoch: options.sourceDateEpoch, progress: progress)
        unlink(fileSystems)

        progress(.step("export", "writing \(options.formats.map(\.label).joined(separator: ", "))"))
        var outputs: [Output] = []
        // The raw disk itself moves into place last, after everything else was made from it.
        for output in options.formats where output != .disk(.raw) {
            let path = try output.write(
                raw: raw, appliance: appliance, directory: options.outputDirectory,
                sourceDateEpoch: options.sourceDateEpoch, progress: progress)
            outputs.append(try Self.describe(path, format: output.label))
        }
        if options.formats.contains(.disk(.raw)) {
            let destination = "\(options.outputDirectory)/\(BuildOutput.disk(.raw).fileName(for: appliance.name))"
            guard rename(raw, destination) == 0 else {
                throw BuilderError("cannot move the image to \(destination): \(Errno(rawValue: errno))")
            }
            outputs.append(try Self.describe(destination, format: "raw"))
        }
        let manifest = try BuildRecords(build: self, root: root, outputs: outputs).write()
        return Result(outputs: outputs, manifest: manifest, accelerator: accelerator, guestSeconds: guestSeconds)
    }

    /// An empty sparse file of `mib` MiB, in place of any file at `path`.
    static func createSparse(_ path: String, mib: Int64) throws(BuilderError) {
        unlink(path)
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(mib * 1_048_576)) == 0
        else {
            throw BuilderError("cannot create the disk \(path): \(Errno(rawValue: errno))")
        }
    }

    /// The configured base's cache key: the packages, and the disk's shape without its identifiers.
    func baseCacheKey(_ layout: DiskLayout) -> String {
        let shape = layout.slots.map { "\($0.role) \($0.filesystem?.rawValue ?? "-")" }.joined(separator: ",")
        return BaseCache.key(
            targetPackages: targetPackages.map(\.package), builderPackages: builderPackages.map(\.package),
            shape: "\(appliance.hardware.firmware.rawValue) \(shape)", architecture: lockfile.architecture,
            sourceDateEpoch: options.sourceDateEpoch)
    }

    /// Keeps the initramfs the guest made on a base, with the digest of its inputs, for the next
    /// build from that base. Like the base, one that cannot be kept costs the next build time only.
    private func keepInitramfs(_ output: String, key: String, run: GuestRunResult, progress: ProgressSink) {
        do throws(BuilderError) {
            guard let report = try reports(InitramfsReport.self, of: run).last, report.size > 0 else { return }
            try BaseCache(cacheDirectory: options.cacheDirectory)
                .storeInitramfs(from: output, offset: report.offset, size: report.size, inputs: report.inputs, key: key)
        } catch {
            progress(.warning("base", error.message))
        }
    }

    /// Moves the base the guest wrote into the cache. A base that cannot be kept costs the next
    /// build time, not this one its image: a warning.
    private func keepBase(_ output: String, key: String, run: GuestRunResult, progress: ProgressSink) {
        do throws(BuilderError) {
            guard let report = try reports(BaseReport.self, of: run).last else { return }
            guard report.size > 0 else {
                progress(.warning("base", "the guest reported an empty configured base"))
                return
            }
            try BaseCache(cacheDirectory: options.cacheDirectory).store(output, size: report.size, key: key)
            let mib = report.size / 1_048_576
            progress(
                .info("base", "kept the configured base \(key.prefix(12)) (\(mib) MiB) for rebuilds of these packages"))
        } catch {
            progress(.warning("base", error.message))
        }
    }

    /// The job's reports of one kind; one that does not read fails the build.
    private func reports<Report: GuestReport>(
        _ kind: Report.Type, of run: GuestRunResult
    ) throws(BuilderError) -> [Report] {
        do throws(BuildVMError) {
            return try run.reports(kind)
        } catch {
            throw BuilderError(error.message)
        }
    }

    /// `kiln-event base "size=BYTES"`: the configured base's archive, at the start of the output disk.
    struct BaseReport: GuestReport {
        static let event = "base"
        let size: Int64

        init(_ record: GuestRecord) throws(GuestRecordError) { size = try record.integer("size") }
    }

    /// `kiln-event initramfs "offset=BYTES size=BYTES inputs=SHA256"`: the initramfs the guest made, on
    /// the output disk, and the digest of what it was made from.
    struct InitramfsReport: GuestReport {
        static let event = "initramfs"
        let offset: Int64
        let size: Int64
        let inputs: String

        init(_ record: GuestRecord) throws(GuestRecordError) {
            offset = try record.integer("offset")
            size = try record.integer("size")
            inputs = try record.text("inputs")
        }
    }

    /// What every derived identifier (disk and file system UUIDs) comes from: the description and
    /// the exact packages, so that the same inputs give the same disk.
    var seed: String {
        var hasher = SHA256()
        hasher.update(data: Data(descriptionDigest.utf8))
        for package in lockfile.packages { hasher.update(data: Data(package.sha256.utf8)) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-256 of the description file as written, with each partition passphrase in it replaced by
    /// `Self.passphraseMask`: the digest is published (manifest.json) and seeds the disk's UUIDs, and
    /// a plain hash over a passphrase would let anyone holding the image test guesses at SHA-256's pace
    /// instead of LUKS's argon2id.
    var descriptionDigest: String {
        var data = FileManager.default.contents(atPath: appliance.sourcePath) ?? Data(appliance.name.utf8)
        let passphrases = Set(appliance.hardware.partitions.compactMap(\.passphrase)).sorted { $0.count > $1.count }
        if !passphrases.isEmpty {
            var text = String(decoding: data, as: UTF8.self)
            for passphrase in passphrases { text = text.replacingAll(passphrase, Self.passphraseMask) }
            data = Data(text.utf8)
        }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static let passphraseMask = "********"

    /// The archives the target keeps in its apt sources: those the build used.
    var targetSources: String? {
        guard !aptSources.isEmpty else { return nil }
        return aptSources.map { source in
            var lines = [
                "Types: deb", "URIs: \(source.uri)", "Suites: \(source.suite)",
                "Components: \(source.components.joined(separator: " "))",
            ]
            lines.append("Signed-By: \(source.effectiveKeyring)")
            return lines.joined(separator: "\n")
        }.joined(separator: "\n\n") + "\n"
    }

    static func describe(_ path: String, format: String) throws(BuilderError) -> Output {
        do {
            let digest = try FileDigest(of: path)
            return Output(path: path, format: format, size: Int64(digest.size), sha256: digest.sha256)
        } catch {
            throw BuilderError(error.message)
        }
    }
}
