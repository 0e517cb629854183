import Crypto
import Foundation
import KilnSupport
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// kiln's builder guest, assembled: a kernel and an initramfs in the cache, named by the content
/// hash of everything they were made from.
package struct BuilderGuest: Sendable {
    package let kernel: String
    package let initramfs: String
    /// SHA-256 (hex) of the recipe, the guest's scripts and every package's contents.
    package let key: String
    /// False when this call assembled it, true when it was already in the cache.
    package let cached: Bool
    /// The machine it runs on.
    package var architecture: Architecture = .x86_64

    /// Changes whenever the assembly itself changes in a way that alters its output.
    static let formatVersion = "kiln-builder-guest-3"

    /// Returns the builder guest for `recipe`, assembling it into `cacheDirectory/builder/<key>`
    /// unless it is already there.
    package static func prepare(
        _ recipe: BuilderGuestRecipe, cacheDirectory: String, progress: ProgressSink = .none
    ) throws(BuildVMError) -> BuilderGuest {
        let key = try cacheKey(recipe)
        let root = "\(cacheDirectory)/builder"
        let dir = "\(root)/\(key)"
        let kernel = "\(dir)/vmlinuz"
        let initramfs = "\(dir)/initrd.img"
        let files = FileManager.default
        if files.fileExists(atPath: kernel) && files.fileExists(atPath: initramfs) {
            return BuilderGuest(
                kernel: kernel, initramfs: initramfs, key: key, cached: true, architecture: recipe.architecture)
        }
        progress(.step("guest", "assembling the builder guest from \(recipe.packages.count) packages"))
        let staging = "\(root)/.staging-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try files.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw BuildVMError(.io, "cannot create \(staging): \(error.localizedDescription)")
        }
        defer { try? files.removeItem(atPath: staging) }
        try BuilderGuestAssembler(recipe: recipe)
            .assemble(kernelPath: "\(staging)/vmlinuz", initramfsPath: "\(staging)/initrd.img")
        // A whole directory appears at once; if another kiln got there first, its copy is as good.
        if rename(staging, dir) != 0 {
            // Read before fileExists, which may set errno again.
            let failure = Errno(rawValue: errno)
            if !(files.fileExists(atPath: kernel) && files.fileExists(atPath: initramfs)) {
                throw BuildVMError(.io, "cannot move the builder guest into \(dir): \(failure)")
            }
        }
        return BuilderGuest(
            kernel: kernel, initramfs: initramfs, key: key, cached: false, architecture: recipe.architecture)
    }

    /// Hashes the recipe, the scripts, and each package's contents (not its name or time).
    static func cacheKey(_ recipe: BuilderGuestRecipe) throws(BuildVMError) -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            hasher.update(data: Data(text.utf8))
            hasher.update(data: Data([0]))
        }
        add(formatVersion)
        add(GuestScripts.initScript)
        add(GuestScripts.eventScript)
        add(GuestScripts.extentScript)
        for list in [recipe.programs, recipe.modules, recipe.files] {
            add(list.joined(separator: ","))
        }
        add(recipe.compression)
        // Absent for x86_64, so that its key stays what it was.
        if recipe.architecture != .x86_64 { add(recipe.architecture.rawValue) }
        add(String(recipe.sourceDateEpoch))
        // Absent for the builder guest, so that its key stays what it was.
        if let initScript = recipe.initScript { add(initScript) }
        for (path, text) in recipe.scripts.sorted(by: { $0.key < $1.key }) {
            add(path)
            add(text)
        }
        var digests: [String] = []
        for path in recipe.packages { digests.append(try sha256(ofFile: path)) }
        for digest in digests.sorted() { add(digest) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func sha256(ofFile path: String) throws(BuildVMError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw BuildVMError(.io, "cannot read \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
