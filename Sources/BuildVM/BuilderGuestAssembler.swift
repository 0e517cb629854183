import Foundation
import KilnArchive

/// Makes the builder guest's kernel and initramfs from `.deb` files, natively on the host.
struct BuilderGuestAssembler {
    let recipe: BuilderGuestRecipe

    static let programDirectories = ["sbin", "usr/sbin", "bin", "usr/bin"]
    /// Where programs' libraries are looked for: Debian's multiarch directories for the guest's
    /// architecture first.
    var libraryDirectories: [String] {
        let triplet = recipe.architecture.multiarchTriplet
        return ["lib/\(triplet)", "usr/lib/\(triplet)", "lib64", "lib", "usr/lib"]
    }

    /// Writes the kernel to `kernelPath` and the initramfs (newc cpio) to `initramfsPath`.
    func assemble(kernelPath: String, initramfsPath: String) throws(BuildVMError) {
        let packages = try unpack()
        let (kernel, version) = try findKernel(in: packages)
        guard case .file(let kernelBytes?, _)? = packages.node(at: kernel) else {
            throw BuildVMError(.assembly, "\(kernel): kernel contents missing")
        }
        // Written from the array itself: Data(kernelBytes) would copy 14 MB at assembly's peak.
        guard FileManager.default.createFile(atPath: kernelPath, contents: nil),
            let handle = FileHandle(forWritingAtPath: kernelPath)
        else { throw BuildVMError(.io, "cannot write \(kernelPath)") }
        do {
            defer { try? handle.close() }
            try handle.write(contentsOf: kernelBytes)
        } catch {
            throw BuildVMError(.io, "cannot write \(kernelPath): \(error.localizedDescription)")
        }
        let image = try initramfsTree(from: packages, kernelVersion: version)
        guard let compression = CpioWriter.Compression(rawValue: recipe.compression) else {
            throw BuildVMError(.assembly, "unknown initramfs compression \(recipe.compression)")
        }
        let writer = try CpioWriter(
            path: initramfsPath, compression: compression, modificationTime: recipe.sourceDateEpoch)
        try writer.add(image)
        try writer.finish()
    }

    /// Every package's files in one tree. The bytes of what the guest never reads are left out:
    /// documentation and translations, glibc's iconv modules and udev's hardware database (8 and
    /// 9 MB), and the kernel modules the recipe's modules do not need (a kernel package holds
    /// 90 MB of modules, the guest loads a few dozen).
    func unpack() throws(BuildVMError) -> FileTree {
        var tree = FileTree()
        let skipped = [
            "usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/",
            "usr/lib/\(recipe.architecture.multiarchTriplet)/gconv/", "lib/udev/hwdb.d/", "usr/lib/udev/hwdb.d/",
        ]
        let modules = try neededModules()
        for path in recipe.packages {
            try DebianPackage(path: path).extract(into: &tree) { file in
                if file.hasSuffix(".ko") && file.contains("lib/modules/") {
                    return modules.contains(ModuleSet.canonical(String(FileTree.basename(file).dropLast(3))))
                }
                return recipe.files.contains(file) || !skipped.contains { file.hasPrefix($0) }
            }
        }
        tree.linkMergedDirectories()
        return tree
    }

    /// The names (canonical, see `ModuleSet`) of the recipe's modules and everything they depend
    /// on, from one pass that reads each module's `.modinfo` and lets its bytes go.
    func neededModules() throws(BuildVMError) -> Set<String> {
        var depends: [String: [String]] = [:]
        for path in recipe.packages {
            do throws(ArchiveError) {
                try DebianArchive(path: path).forEachDataEntry { (entry, reader) throws(ArchiveError) in
                    let suffix = ModuleSet.compressedSuffix(of: entry.path)
                    let path = suffix.map { String(entry.path.dropLast($0.count)) } ?? entry.path
                    guard entry.kind == .file, path.hasSuffix(".ko"), path.contains("lib/modules/") else { return }
                    let name = ModuleSet.canonical(String(FileTree.basename(path).dropLast(3)))
                    var bytes = try reader.readData()
                    if suffix != nil { bytes = try ModuleSet.decompress(bytes, name: entry.path) }
                    let info: [String: String]
                    do throws(BuildVMError) {
                        info = try ELFFile(bytes: bytes, name: entry.path).moduleInfo()
                    } catch {
                        throw ArchiveError(path, error.description)
                    }
                    depends[name] = (info["depends"] ?? "").split(separator: ",").map {
                        ModuleSet.canonical(String($0))
                    }
                }
            } catch {
                throw BuildVMError(.package, error.description)
            }
        }
        var needed: Set<String> = []
        var pending = recipe.modules.map(ModuleSet.canonical)
        while let name = pending.popLast() {
            guard needed.insert(name).inserted else { continue }
            pending += depends[name] ?? []
        }
        return needed
    }

    /// The one `boot/vmlinuz-<version>` in the packages.
    func findKernel(in tree: FileTree) throws(BuildVMError) -> (path: String, version: String) {
        let kernels = tree.sortedPaths.filter { $0.hasPrefix("boot/vmlinuz-") }
        guard kernels.count == 1, let kernel = kernels.first else {
            let found = kernels.isEmpty ? "none" : kernels.joined(separator: ", ")
            throw BuildVMError(.assembly, "need exactly one kernel (boot/vmlinuz-*) among the packages, found \(found)")
        }
        return (kernel, String(kernel.dropFirst("boot/vmlinuz-".count)))
    }

    /// The initramfs: busybox, `/init`, the programs with their libraries, the modules in load order.
    func initramfsTree(from packages: FileTree, kernelVersion: String) throws(BuildVMError) -> FileTree {
        var image = FileTree()
        for dir in ["dev", "proc", "sys", "tmp", "run", "job", "target", "root", "etc/kiln"] {
            image.add(dir, .directory(permissions: 0o755))
        }
        image.add("dev/console", .characterDevice(major: 5, minor: 1, permissions: 0o600))
        image.add("etc/mtab", .symlink(target: "/proc/mounts"))
        try copy("bin/busybox", from: packages, into: &image)
        let initScript = recipe.initScript ?? GuestScripts.initScript
        image.add("init", .file(contents: Array(initScript.utf8) + [0x0A], permissions: 0o755))
        for (path, text) in recipe.scripts.sorted(by: { $0.key < $1.key }) {
            image.add(path, .file(contents: Array(text.utf8) + [0x0A], permissions: 0o755))
        }
        image.add(
            "bin/kiln-extent", .file(contents: Array(GuestScripts.extentScript.utf8) + [0x0A], permissions: 0o755))
        image.add("bin/kiln-event", .file(contents: Array(GuestScripts.eventScript.utf8) + [0x0A], permissions: 0o755))

        var copiedLibraries: Set<String> = []
        for program in recipe.programs {
            let candidates = Self.programDirectories.map { "\($0)/\(program)" }
            guard let path = candidates.first(where: { packages.resolve($0) != nil }) else {
                throw BuildVMError(.assembly, "no package provides the program \(program)")
            }
            try copyWithLibraries(path, from: packages, into: &image, copied: &copiedLibraries)
            // Debian's busybox prefers its own applets to PATH for bare names (mke2fs, mkfs.vfat):
            // jobs call the real programs by these paths.
            image.add("\(GuestScripts.programDirectory)/\(program)", .symlink(target: "/" + path))
        }
        for file in recipe.files where packages.resolve(file) != nil {
            try copy(file, from: packages, into: &image)
        }

        let modules = try ModuleSet(tree: packages, kernelVersion: kernelVersion).loadOrder(for: recipe.modules)
        for module in modules {
            try copy(module, from: packages, into: &image)
            if case .file(let bytes?, let permissions)? = image.node(at: module) {
                image.add(module, .file(contents: Self.withoutSignature(bytes), permissions: permissions))
            }
        }
        image.add(
            "etc/kiln/modules", .file(contents: Array(modules.map { "\($0)\n" }.joined().utf8), permissions: 0o644))
        return image.placedBeyondLinks()
    }

    /// A kernel module without its appended signature: checking an RSA signature per module costs
    /// tens of milliseconds under TCG, and Debian's kernels load unsigned modules (they only note a
    /// taint) unless Secure Boot enforces signatures, which the builder guest never runs under.
    ///
    /// The signature trails the module: signature bytes, then `struct module_signature` (12 bytes,
    /// its last field `sig_len` a big-endian 32-bit integer), then the 28-byte magic
    /// "~Module signature appended~\n" (linux `include/linux/module_signature.h`).
    static func withoutSignature(_ bytes: [UInt8]) -> [UInt8] {
        let magic = Array("~Module signature appended~\n".utf8)
        guard bytes.count > magic.count + 12, Array(bytes.suffix(magic.count)) == magic else { return bytes }
        let lengthEnd = bytes.count - magic.count
        let length = bytes[(lengthEnd - 4)..<lengthEnd].reduce(0) { $0 << 8 | Int($1) }
        let total = length + 12 + magic.count
        guard total < bytes.count else { return bytes }
        return Array(bytes.prefix(bytes.count - total))
    }

    /// Copies `path` and every link met on the way to it.
    private func copy(_ path: String, from packages: FileTree, into image: inout FileTree) throws(BuildVMError) {
        let (resolved, links) = packages.resolveRecordingLinks(path)
        guard let resolved, let node = packages.node(at: resolved) else {
            throw BuildVMError(.assembly, "no package provides \(path)")
        }
        for link in links {
            if let linkNode = packages.node(at: link) { image.add(link, linkNode) }
        }
        if case .file(nil, _) = node { throw BuildVMError(.assembly, "\(resolved): contents were not kept") }
        image.add(resolved, node)
    }

    /// Copies an ELF program or library, its interpreter, and what it needs, transitively.
    private func copyWithLibraries(
        _ path: String, from packages: FileTree, into image: inout FileTree, copied: inout Set<String>
    ) throws(BuildVMError) {
        try copy(path, from: packages, into: &image)
        guard let resolved = packages.resolve(path), case .file(let bytes?, _)? = packages.node(at: resolved),
            ELFFile.isELF(bytes)
        else { return }
        let elf = try ELFFile(bytes: bytes, name: resolved)
        var wanted: [String] = []
        if let interpreter = try elf.interpreter() { wanted.append(ArchiveEntry.normalize(interpreter)) }
        for library in try elf.neededLibraries() {
            let candidates = libraryDirectories.map { "\($0)/\(library)" }
            guard let found = candidates.first(where: { packages.resolve($0) != nil }) else {
                throw BuildVMError(.elf, "\(resolved) needs \(library), which no package provides")
            }
            wanted.append(found)
        }
        for library in wanted where !copied.contains(library) {
            copied.insert(library)
            try copyWithLibraries(library, from: packages, into: &image, copied: &copied)
        }
    }
}
