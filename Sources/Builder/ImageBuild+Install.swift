import BuildVM
import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Steps 4 to 6 of a build: the target's file systems, made by the builder guest and settled on the
/// host, or on the host alone when a kept guest run fits (`GuestChangesCache`).
extension ImageBuild {
    /// What `install` works from.
    struct Installation {
        var layout: DiskLayout
        var base: InstallJob.Base
        var baseKey: String?
        var root: TargetRoot
        var rootTar: String
        var guest: BuilderGuest
        var work: String
        /// The target disk, finished when `install` returns.
        var raw: String
    }

    /// How the target disk was made.
    struct Installed {
        /// nil when no guest ran.
        var accelerator: Accelerator?
        var guestSeconds = 0.0
    }

    /// Makes the target disk at `installation.raw`: partition table, file systems, boot loader.
    ///
    /// Plain ext4 file systems are laid out on the host, natively, before the guest starts. On a
    /// lockfile's first build the guest configures the packages the host wrote, saves the
    /// configured base and stops; the build then goes on from that base in a second run, as every
    /// rebuild does, so that both make the same disk. From a base, the description's files are laid
    /// over it on the host too, and a run whose every input is one a kept run had needs no guest.
    func install(
        _ installation: Installation, progress: ProgressSink, consoleLogs: inout [String]
    ) async throws(BuilderError) -> Installed {
        let (layout, work, raw) = (installation.layout, installation.work, installation.raw)
        let bases = BaseCache(cacheDirectory: options.cacheDirectory)
        let changesCache = GuestChangesCache(cacheDirectory: options.cacheDirectory)
        let fileSystemLayout = BaseFileSystems(layout: layout)
        // The guest sends each ext file system's tree back on this disk (see ReproducibleFileSystems).
        let fileSystems = "\(work)/filesystems.raw"
        defer {
            unlink(fileSystems)
            unlink(installation.rootTar)
        }
        var runBase = installation.base
        var installed = Installed(accelerator: nil)
        var accelerator = options.accelerator
        var runs = 0
        while true {
            runs += 1
            var install = InstallJob(
                appliance: appliance, layout: layout, root: installation.root, rootTar: installation.rootTar,
                aptSources: targetSources, sourceDateEpoch: options.sourceDateEpoch)
            install.base = runBase
            install.remoteFiles = options.remoteFiles
            if let baseKey = installation.baseKey, case .reuse(let tar) = runBase {
                install.cachedInitramfs = bases.initramfs(baseKey)
                install.baseHooks = try InitramfsInputs.hookTexts(inBase: tar)
            }
            var prewrite: (tar: String, fileSystems: BaseFileSystems)?
            if let fileSystemLayout {
                switch runBase {
                case .reuse(let tar):
                    prewrite = (tar, fileSystemLayout)
                    install.overlaid = true
                case .configureAndSave:
                    prewrite = (installation.rootTar, fileSystemLayout)
                    install.stopsAfterBase = true
                case .configure: break
                }
                if prewrite != nil { install.prewritten = fileSystemLayout.numbers }
            }
            install.configuresOnHost = install.overlaid
            var job = try install.guestJob(workDirectory: work)
            let overlay = "\(work)/overlay.tar"
            if install.overlaid, let base = prewrite?.tar {
                var laid = TreeOverlay()
                let host = HostConfiguration(appliance: appliance, sourceDateEpoch: options.sourceDateEpoch)
                var configured = TreeOverlay()
                if try !host.configure(base: base, overlay: overlay, scratch: "\(work)/units", into: &configured) {
                    progress(.info("base", "a service has only a SysV script: the guest makes accounts and services"))
                    install.configuresOnHost = false
                    job = try install.guestJob(workDirectory: work)
                    configured = TreeOverlay()
                }
                try laid.add(archive: overlay)
                laid.add(configured)
                let tree = "\(work)/tree-\(runs).tar"
                try laid.write(over: base, to: tree, sourceDateEpoch: options.sourceDateEpoch)
                prewrite?.tar = tree
            }
            // Fresh disks for each run: nothing a first run left in free space may reach the image.
            // Both get the partition table and the target its FAT file systems here, natively.
            for disk in [raw, fileSystems] {
                try Self.createSparse(disk, mib: layout.sizeMiB)
                try layout.writePartitionTable(to: disk)
            }

            // A run with nothing of the description's own to execute, whose every input a kept run had.
            var changesKey: String?
            if install.overlaid, let fileSystemLayout, let tree = prewrite?.tar, let baseKey = installation.baseKey,
                appliance.post.base.isEmpty, !layout.slots.contains(where: { $0.filesystem == .swap })
            {
                changesKey = try guestChangesKey(
                    job: job, install: install, overlay: overlay, baseKey: baseKey, layout: layout)
                if let changesKey, let kept = changesCache.lookup(changesKey) {
                    progress(
                        .step(
                            "base",
                            "nothing to execute in the target: writing the image on the host from the configured base "
                                + "and the builder guest's kept run \(changesKey.prefix(12)) (no QEMU)"))
                    try changesCache.apply(
                        kept, raw: raw, tree: tree, fileSystems: fileSystemLayout,
                        sourceDateEpoch: options.sourceDateEpoch)
                    return installed
                }
            }

            for slot in layout.slots where slot.filesystem == .vfat && slot.encryptionID == nil {
                try layout.formatFAT(slot, into: raw, sourceDateEpoch: options.sourceDateEpoch)
            }
            // Where the guest writes the configured base and the initramfs made on it: at most what
            // the target disk holds, plus the tars' headers and 1 GiB (sparse: only what is written
            // takes space).
            let output = installation.baseKey == nil ? nil : "\(work)/output-\(runs).raw"
            if let output {
                try Self.createSparse(output, mib: (runBase == .configureAndSave ? layout.sizeMiB : 0) + 1024)
            }
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
            let run: GuestRunResult
            do {
                run = try await GuestRunner(guest: installation.guest, options: runOptions)
                    .run(
                        job, targetDisk: raw, fileSystemDisk: fileSystems, outputDisk: output, workDirectory: work,
                        progress: progress)
            } catch {
                throw BuilderError(error.message, consoleTail: error.consoleTail)
            }
            accelerator = run.accelerator
            installed.accelerator = run.accelerator
            let elapsed = run.elapsed.components
            installed.guestSeconds += Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            if let output, let baseKey = installation.baseKey {
                // A guest that saved the base and went on made the initramfs too: the base is the
                // tar at the start of the output disk.
                if install.baseHooks == nil, runBase == .configureAndSave,
                    try !reports(BaseReport.self, of: run).isEmpty
                {
                    install.baseHooks = try? InitramfsInputs.hookTexts(inBase: output)
                }
                // The initramfs first: keeping the base moves the output disk into the cache.
                keepInitramfs(
                    output, key: baseKey, inputs: try install.initramfsInputs(overlay: overlay), run: run,
                    progress: progress)
                if runBase == .configureAndSave {
                    keepBase(output, key: baseKey, run: run, progress: progress)
                    // A guest that could not save the base (packages wrote to the ESP) finished the job.
                    if install.stopsAfterBase, try !reports(BaseReport.self, of: run).isEmpty {
                        // One not kept (a warning said why) is on the output disk still, a tar from its start.
                        runBase = .reuse(bases.lookup(baseKey) ?? output)
                        unlink(installation.rootTar)
                        continue
                    }
                }
            }

            progress(.step("settle", "writing the file systems into place"))
            let trees = Dictionary(
                try reports(ReproducibleFileSystems.TreeReport.self, of: run).map { ($0.partition, $0.tree) },
                uniquingKeysWith: { _, last in last })
            try ReproducibleFileSystems.finish(
                raw: raw, fileSystemDisk: fileSystems, layout: layout, trees: trees, base: prewrite?.tar ?? runBase.tar,
                sourceDateEpoch: options.sourceDateEpoch, progress: progress)
            if let changesKey, let fileSystemLayout, let tree = prewrite?.tar {
                do throws(BuilderError) {
                    try changesCache.store(
                        key: changesKey, raw: raw, fileSystemDisk: fileSystems, trees: trees, tree: tree,
                        fileSystems: fileSystemLayout)
                    progress(
                        .info(
                            "base",
                            "kept the builder guest's run \(changesKey.prefix(12)): a build that needs the same one "
                                + "makes its image without QEMU"))
                } catch {
                    progress(.warning("base", error.message))
                }
            }
            return installed
        }
    }

    /// What a guest run from a base reads, as `GuestChangesCache`'s key: the base, the install script,
    /// the disk's layout and identifiers, the job's own files (GRUB's configuration, the kernels,
    /// the configuration script), the initramfs inputs and the description's files it reads.
    private func guestChangesKey(
        job: GuestJob, install: InstallJob, overlay: String, baseKey: String, layout: DiskLayout
    ) throws(BuilderError) -> String? {
        guard let initramfs = try install.initramfsInputs(overlay: overlay) else { return nil }
        var parts = [InstallScript.text, baseKey, initramfs, "\(layout)", appliance.hardware.firmware.rawValue]
        for file in job.files.sorted(by: { $0.path < $1.path }) where !file.extent {
            // The settings say whether the initramfs is cached: either run leaves the same tree.
            guard file.path != "overlay.tar", case .bytes(let bytes) = file.source else { continue }
            var text = String(decoding: bytes, as: UTF8.self)
            if file.path == "settings.sh" {
                text = text.split(separator: "\n").filter { !$0.hasPrefix("INITRAMFS=") }.joined(separator: "\n")
            }
            parts.append("\(file.path)\n\(text)")
        }
        return try GuestChangesCache.key(parts: parts, overlay: overlay, configuredOnHost: install.configuresOnHost)
    }
}
