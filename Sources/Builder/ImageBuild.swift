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
        /// nil when no builder guest ran (`GuestChangesCache`).
        package var accelerator: Accelerator?
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
        let raw = "\(work)/disk.raw"
        let installed = try await install(
            Installation(
                layout: layout, base: base, baseKey: baseKey, root: root, rootTar: rootTar, guest: guest, work: work,
                raw: raw),
            progress: progress, consoleLogs: &consoleLogs)

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
        return Result(
            outputs: outputs, manifest: manifest, accelerator: installed.accelerator,
            guestSeconds: installed.guestSeconds)
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
    func keepInitramfs(
        _ output: String, key: String, inputs: String?, run: GuestRunResult, progress: ProgressSink
    ) {
        do throws(BuilderError) {
            guard let inputs, let report = try reports(InitramfsReport.self, of: run).last, report.size > 0 else {
                return
            }
            try BaseCache(cacheDirectory: options.cacheDirectory)
                .storeInitramfs(from: output, offset: report.offset, size: report.size, inputs: inputs, key: key)
        } catch {
            progress(.warning("base", error.message))
        }
    }

    /// Moves the base the guest wrote into the cache. A base that cannot be kept costs the next
    /// build time, not this one its image: a warning.
    func keepBase(_ output: String, key: String, run: GuestRunResult, progress: ProgressSink) {
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
    func reports<Report: GuestReport>(
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

    /// `kiln-event initramfs "offset=BYTES size=BYTES"`: the initramfs the guest made, on the output disk.
    struct InitramfsReport: GuestReport {
        static let event = "initramfs"
        let offset: Int64
        let size: Int64

        init(_ record: GuestRecord) throws(GuestRecordError) {
            offset = try record.integer("offset")
            size = try record.integer("size")
        }
    }

    /// What every derived identifier (disk and file system UUIDs) comes from: the appliance's name,
    /// its disk (partitions, firmware, size, architecture; whether a partition is encrypted, never
    /// its passphrase) and the exact packages, so that the same inputs give the same disk. An edit
    /// of anything else (users, host name, files, `post`) keeps the identifiers, and with them the
    /// boot loader's installed bytes (`BootLoaderCache`).
    var seed: String {
        var hasher = SHA256()
        let hardware = appliance.hardware
        var lines = [
            "kiln disk 1", appliance.name, hardware.firmware.rawValue, hardware.arch.rawValue,
            hardware.diskSize.map { "\($0.mebibytes)" } ?? "-",
        ]
        for partition in hardware.partitions {
            lines.append(
                [
                    partition.mountPoint, "\(partition.size.mebibytes)", partition.type.rawValue,
                    partition.options ?? "-",
                    partition.passphrase == nil ? "plain" : "encrypted", partition.grow ? "grow" : "fixed",
                ].joined(separator: " "))
        }
        hasher.update(data: Data(lines.joined(separator: "\n").utf8))
        for package in lockfile.packages { hasher.update(data: Data(package.sha256.utf8)) }
        return hasher.finalize().hex
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
