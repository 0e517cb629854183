import Appliance
import BuildVM
import Builder
import Crypto
import Foundation
import KilnSupport
import Lab
import Logging
import NetBoot
import Packages

/// What `kiln serve --config` needs for image deploys: the deploy agent, assembled from Debian packages
/// (locked in `LAB.agent.lock`), and images built from descriptions for hosts with `install: image`.
struct LabDeploys {
    var lab: LabConfig
    var aptRoot: String
    var offline: Bool
    /// Where image builds report their steps.
    var progress: ProgressSink = .none

    /// The deploy agent's kernel and initramfs, assembled once into kiln's cache (by content).
    /// `--offline` uses only the lockfile and the cache.
    func prepareAgent(progress: ProgressSink) async throws -> (kernel: String, initrd: String) {
        let sources = try AptSources.load(
            listFile: "\(aptRoot)/sources.list", partsDirectory: "\(aptRoot)/sources.list.d")
        // The agent's package names are Debian 12's, whatever release the host runs.
        let prepared = try await PackagePlan.prepare(
            sources: AptSources.retarget(sources, to: "bookworm"), requested: DeployAgent.debianPackages,
            base: .none, lockPath: lab.path + ".agent.lock",
            locked: offline || FileManager.default.fileExists(atPath: lab.path + ".agent.lock"), offline: offline,
            cache: PackageCache(root: KilnCache.root()), progress: progress)
        let agent = try BuilderGuest.prepare(
            DeployAgent.recipe(packages: prepared.packages.map(\.path)),
            cacheDirectory: KilnCache.root(), progress: progress)
        return (agent.kernel, agent.initramfs)
    }

    /// Builds a host's description into a qcow2 (with its manifest) under the lab's state folder, or
    /// returns the one an earlier call built from the same description and lockfile.
    func buildImage(for host: LabConfig.Host, logger: Logger) async throws -> String {
        guard let description = host.description else {
            throw NetBootError(.configuration, "\(host.name) has no description to build")
        }
        let appliance = try ApplianceLoader().load(description)
        let request = try PackageRequest(
            appliance: appliance,
            hostSources: AptSources.load(
                listFile: "\(aptRoot)/sources.list", partsDirectory: "\(aptRoot)/sources.list.d"))
        let lockPath = description + ".lock"
        let prepared = try await request.prepare(
            lockPath: lockPath, locked: offline || FileManager.default.fileExists(atPath: lockPath), offline: offline,
            cache: PackageCache(root: KilnCache.root()), progress: progress)
        var hasher = SHA256()
        hasher.update(data: FileManager.default.contents(atPath: description) ?? Data())
        hasher.update(data: Data(prepared.lockfile.encoded().utf8))
        let key = hasher.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
        let directory = "\(lab.stateDirectory)/built/\(appliance.name)-\(key)"
        let image = "\(directory)/\(appliance.name).qcow2"
        if FileManager.default.fileExists(atPath: "\(directory)/manifest.json"),
            FileManager.default.fileExists(atPath: image)
        {
            logger.notice("lab: \(host.name) is deployed with \(image), built earlier from \(description)")
            return image
        }
        var options = ImageBuild.Options(outputDirectory: directory, cacheDirectory: KilnCache.root())
        options.formats = [.disk(.qcow2)]
        options.sourceDateEpoch = BuildCommand.sourceDateEpoch(prepared.lockfile)
        options.remoteFiles = prepared.files
        let started = ContinuousClock.now
        let result = try await ImageBuild(
            appliance: appliance, lockfile: prepared.lockfile, targetPackages: prepared.packages,
            builderPackages: prepared.builderPackages, aptSources: request.sources, options: options
        ).run(progress: progress)
        logger.notice(
            "lab: built the image of \(host.name) in \(ContinuousClock.now - started)",
            metadata: ["image": "\(image)", "accelerator": "\(result.accelerator?.rawValue ?? "none")"])
        return image
    }
}
