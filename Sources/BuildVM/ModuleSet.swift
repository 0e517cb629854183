import Foundation
import KilnArchive

/// The kernel modules of one kernel package, by name, with their dependencies read from each
/// module's `.modinfo` (`depends=`). Debian's packages ship no `modules.dep`: depmod writes it
/// at install time.
struct ModuleSet {
    private let tree: FileTree
    /// Module name ("virtio_blk", with `-` written `_`) to its path in the tree.
    private let paths: [String: String]
    /// Names in `modules.builtin`: compiled into the kernel, nothing to load.
    private let builtin: Set<String>

    init(tree: FileTree, kernelVersion: String) throws(BuildVMError) {
        self.tree = tree
        // bookworm's kernels ship modules under /lib, trixie's under /usr/lib (the tree links
        // one to the other where a release has only one).
        let root = (tree.resolve("lib/modules/\(kernelVersion)") ?? "lib/modules/\(kernelVersion)") + "/"
        var paths: [String: String] = [:]
        for path in tree.sortedPaths where path.hasPrefix(root) && path.hasSuffix(".ko") {
            paths[Self.canonical(String(FileTree.basename(path).dropLast(3)))] = path
        }
        guard !paths.isEmpty else {
            throw BuildVMError(.assembly, "no kernel modules under /\(root) (compressed modules are not supported)")
        }
        self.paths = paths
        var builtin: Set<String> = []
        if case .file(let bytes?, _)? = tree.node(at: root + "modules.builtin") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let name = FileTree.basename(String(line))
                if name.hasSuffix(".ko") { builtin.insert(Self.canonical(String(name.dropLast(3)))) }
            }
        }
        self.builtin = builtin
    }

    /// Paths of `names` and their dependencies, each after everything it depends on.
    func loadOrder(for names: [String]) throws(BuildVMError) -> [String] {
        var order: [String] = []
        var visiting: Set<String> = []
        var done: Set<String> = []
        func visit(_ raw: String) throws(BuildVMError) {
            let name = Self.canonical(raw)
            if done.contains(name) { return }
            guard let path = paths[name] else {
                if builtin.contains(name) { return }
                throw BuildVMError(.assembly, "the kernel has no module \(raw), built in or loadable")
            }
            guard visiting.insert(name).inserted else {
                throw BuildVMError(.assembly, "kernel module dependencies loop through \(name)")
            }
            guard case .file(let bytes?, _)? = tree.node(at: path) else {
                throw BuildVMError(.assembly, "\(path): contents were not kept")
            }
            let depends = try ELFFile(bytes: bytes, name: path).moduleInfo()["depends"] ?? ""
            for dependency in depends.split(separator: ",") where !dependency.isEmpty {
                try visit(String(dependency))
            }
            visiting.remove(name)
            done.insert(name)
            order.append(path)
        }
        for name in names { try visit(name) }
        return order
    }

    static func canonical(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// The compression suffix of a kernel module's file name (`.xz` of `virtio_blk.ko.xz`), if it
    /// has one; `ModuleSet.decompress` reads it.
    static func compressedSuffix(of path: String) -> String? {
        guard path.contains("lib/modules/") else { return nil }
        return [".ko.xz", ".ko.zst", ".ko.gz"].first { path.hasSuffix($0) }.map { String($0.dropFirst(3)) }
    }

    /// The `.ko` a compressed module file holds (libarchive reads xz, zstd and gzip).
    static func decompress(_ bytes: [UInt8], name: String) throws(ArchiveError) -> [UInt8] {
        let reader = try ArchiveReader(bytes: bytes, name: name, format: .raw)
        guard try reader.next() != nil else { throw ArchiveError(name, "empty compressed module") }
        return try reader.readData()
    }
}
