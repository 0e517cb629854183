import Crypto
import Foundation
import KilnSupport
import Packages
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Configured bases: the target's file tree once every package is unpacked and configured, before
/// anything particular to one description is written (SPEC, "Where build time goes under TCG").
/// Under TCG `dpkg --configure` is about half of a build, and it depends only on the packages, so a
/// rebuild of the same lockfile (or one whose `post` or settings changed) starts from the tar that
/// an earlier build's guest wrote.
///
/// Entries live in `<cache>/base/<key>.tar`. The key hashes everything that reaches the guest before
/// the packages are configured: every package's SHA-256 in unpack order (the target's and the
/// builder guest's), the part of the install script that configures them, the disk's shape, the
/// architecture and the guest's clock (SOURCE_DATE_EPOCH), and `format`, which changes whenever
/// kiln changes how it lays out the unpacked tree (`TargetRoot`). A different input is a different
/// key, so a stale base is never found; entries are written under a temporary name and renamed, so
/// a half-written one is never found either.
///
/// A base gives back the same tree it was made from (GNU tar keeps owners, modes, times, xattrs,
/// ACLs, hard links and holes), and the image's ext file systems are written from the finished tree,
/// so a build from a cached base gives the same image as one that configured the packages itself.
///
/// Beside each base, `<key>.initramfs.tar` keeps what `update-initramfs` last wrote on it, and
/// `<key>.initramfs-inputs` the digest of what it was made from (the finished tree's `/etc`, fstab
/// without UUIDs, and every file's name, mode and size; see `InstallScript`). A build from the base
/// whose tree gives the same digest copies it instead of making it again: an edit of `post`, or of
/// anything that only changes the disk's identifiers, no longer costs the initramfs.
package struct BaseCache: Sendable {
    /// Bump when `TargetRoot` writes a different tree for the same packages, or the guest makes
    /// or reads the base differently.
    static let format = "kiln configured base 1"
    /// How many bases are kept: the most recently used ones.
    static let keep = 4

    package let directory: String

    package init(cacheDirectory: String) {
        directory = "\(cacheDirectory)/base"
    }

    /// The key of the base a build would configure.
    ///
    /// - Parameters:
    ///   - targetPackages: the target's `.deb` files in unpack order.
    ///   - builderPackages: the builder guest's (its kernel and tools run the configuration).
    ///   - shape: what the disk looks like apart from identifiers (file systems and mount points).
    static func key(
        targetPackages: [Lockfile.Package], builderPackages: [Lockfile.Package], shape: String, architecture: String,
        sourceDateEpoch: Int64
    ) -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            hasher.update(data: Data(text.utf8))
            hasher.update(data: Data([0]))
        }
        add(format)
        add(architecture)
        add(String(sourceDateEpoch))
        add(shape)
        add(InstallScript.text)
        add(InstallScript.initramfsHold)
        add("target")
        for package in targetPackages { add("\(package.name) \(package.version) \(package.sha256)") }
        add("builder")
        for package in builderPackages { add("\(package.name) \(package.version) \(package.sha256)") }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func path(_ key: String) -> String { "\(directory)/\(key).tar" }

    /// The cached base for `key`, if there is one; marks it as just used.
    func lookup(_ key: String) -> String? {
        let path = path(key)
        guard access(path, R_OK) == 0 else { return nil }
        utimes(path, nil)
        return path
    }

    /// Moves the first `size` bytes of `file` (the guest's output disk) into the cache as `key`,
    /// then drops the least recently used bases beyond `keep`.
    func store(_ file: String, size: Int64, key: String) throws(BuilderError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw BuilderError("cannot create \(directory): \(error.localizedDescription)")
        }
        guard truncate(file, off_t(size)) == 0 else {
            throw BuilderError("cannot truncate \(file): \(Errno(rawValue: errno))")
        }
        AtomicOutput.removeLeftovers(in: directory, prefix: ".\(key).tar.kiln-")
        let temporary = "\(directory)/.\(key).tar.kiln-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if rename(file, temporary) != 0 {
            // Another file system: copy.
            do {
                try FileManager.default.copyItem(atPath: file, toPath: temporary)
            } catch {
                unlink(temporary)
                throw BuilderError("cannot copy the configured base into \(directory): \(error.localizedDescription)")
            }
        }
        guard rename(temporary, path(key)) == 0 else {
            let reason = Errno(rawValue: errno)
            unlink(temporary)
            throw BuilderError("cannot store the configured base in \(path(key)): \(reason)")
        }
        prune()
    }

    /// Removes all but the `keep` most recently used bases, each with its initramfs.
    private func prune() {
        let files = FileManager.default
        let names = (try? files.contentsOfDirectory(atPath: directory)) ?? []
        let keys = names.filter { $0.hasSuffix(".tar") && !$0.hasSuffix(".initramfs.tar") && !$0.hasPrefix(".") }
            .map { name -> (String, Date) in
                let path = "\(directory)/\(name)"
                let date = (try? files.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
                return (String(name.dropLast(".tar".count)), date)
            }
        for (key, _) in keys.sorted(by: { $0.1 > $1.1 }).dropFirst(Self.keep) {
            for path in [path(key), initramfsPaths(key).tar, initramfsPaths(key).inputs] { unlink(path) }
        }
    }

    // MARK: The initramfs made on a base

    /// A base's initramfs: the tar of what `update-initramfs` wrote (`/boot/initrd.img-*`; bookworm's
    /// keeps no state elsewhere), and the digest of the inputs it was made from (what the guest's
    /// install script reads of the finished tree: see `InstallScript`).
    package struct Initramfs: Sendable, Equatable {
        package var tar: String
        package var inputs: String
    }

    func initramfsPaths(_ key: String) -> (tar: String, inputs: String) {
        ("\(directory)/\(key).initramfs.tar", "\(directory)/\(key).initramfs-inputs")
    }

    /// The initramfs last made on the base `key`, if any.
    func initramfs(_ key: String) -> Initramfs? {
        let (tar, inputsPath) = initramfsPaths(key)
        guard access(tar, R_OK) == 0, let inputs = try? String(contentsOfFile: inputsPath, encoding: .utf8) else {
            return nil
        }
        let digest = inputs.trimmingCharacters(in: .whitespacesAndNewlines)
        guard digest.count == 64, digest.allSatisfy(\.isHexDigit) else { return nil }
        return Initramfs(tar: tar, inputs: digest)
    }

    /// Copies `size` bytes at `offset` of `file` (the guest's output disk) into the cache as the
    /// initramfs of base `key`, made from `inputs`; replaces the one kept before.
    func storeInitramfs(from file: String, offset: Int64, size: Int64, inputs: String, key: String) throws(BuilderError)
    {
        let (tar, inputsPath) = initramfsPaths(key)
        guard inputs.count == 64, inputs.allSatisfy(\.isHexDigit) else {
            throw BuilderError("the guest reported no digest for its initramfs (\(inputs))")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let source = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
            defer { try? source.close() }
            try source.seek(toOffset: UInt64(offset))
            let output = try AtomicOutput(tar)
            defer { output.discard() }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output.temporaryPath))
            defer { try? handle.close() }
            var remaining = Int(size)
            while remaining > 0 {
                guard let chunk = try source.read(upToCount: min(remaining, 1 << 20)), !chunk.isEmpty else {
                    throw BuilderError("the guest's initramfs ends early in \(file)")
                }
                try handle.write(contentsOf: chunk)
                remaining -= chunk.count
            }
            try output.commit()
            try AtomicOutput.write(inputs + "\n", to: inputsPath)
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError("cannot keep the initramfs in \(directory): \(error.localizedDescription)")
        }
    }
}
