/// A file system tree held in memory: what a set of packages would install, or what goes into an
/// initramfs. Paths are relative to the root, without a leading slash ("usr/bin/env").
struct FileTree: Sendable {
    enum Node: Sendable, Equatable {
        /// `contents` is nil when the bytes were not kept (see `DebianPackage.extract`).
        case file(contents: [UInt8]?, permissions: UInt32)
        case directory(permissions: UInt32)
        case symlink(target: String)
        /// Only the initramfs has one: `/dev/console`, which the kernel opens before `/init` runs.
        case characterDevice(major: UInt32, minor: UInt32, permissions: UInt32)
    }

    private(set) var nodes: [String: Node] = [:]

    /// Adds or replaces the node at `path`, creating missing parent directories (mode 0755).
    mutating func add(_ path: String, _ node: Node) {
        var parent = Self.parent(of: path)
        while let dir = parent, nodes[dir] == nil {
            nodes[dir] = .directory(permissions: 0o755)
            parent = Self.parent(of: dir)
        }
        if case .directory = node, case .directory = nodes[path] { return }
        nodes[path] = node
    }

    func node(at path: String) -> Node? { nodes[path] }

    /// Paths sorted by their bytes, so that every directory precedes what it holds.
    var sortedPaths: [String] { nodes.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } }

    /// Follows symbolic links in every component of `path` (absolute targets from the tree's root,
    /// relative ones from the link's directory); nil if something on the way is missing or loops.
    func resolve(_ path: String) -> String? { resolveRecordingLinks(path).resolved }

    /// Resolves `path` as `resolve` does, and lists every link met on the way: all of them must be
    /// copied along with the final file for the path to work in another tree.
    func resolveRecordingLinks(_ path: String) -> (resolved: String?, links: [String]) {
        var pending = ArraySlice(path.split(separator: "/").map(String.init))
        var resolved: [String] = []
        var links: [String] = []
        while let component = pending.popFirst() {
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = (resolved + [component]).joined(separator: "/")
            switch nodes[candidate] {
            case nil:
                return (nil, links)
            case .symlink(let target)?:
                links.append(candidate)
                if links.count > 40 { return (nil, links) }
                if target.hasPrefix("/") { resolved = [] }
                pending = ArraySlice(target.split(separator: "/").map(String.init)) + pending
            default:
                resolved.append(component)
            }
        }
        return (resolved.joined(separator: "/"), links)
    }

    /// Where a release installs only under `/usr` (trixie's packages hold `usr/bin/busybox`, no
    /// `bin`), the links a merged-/usr system has: `bin` to `usr/bin`, and so on. A tree that has
    /// the top-level directory (bookworm's packages) keeps it.
    mutating func linkMergedDirectories() {
        for name in ["bin", "sbin", "lib", "lib64"] where nodes[name] == nil && nodes["usr/\(name)"] != nil {
            add(name, .symlink(target: "usr/\(name)"))
        }
    }

    /// The same tree with every node moved to where its parent directory resolves: `bin/x` becomes
    /// `usr/bin/x` where `bin` links to `usr/bin`. An archive of it then never asks its unpacker
    /// to create a file through a link to a directory that comes later in the archive.
    func placedBeyondLinks() -> FileTree {
        var placed = FileTree()
        for path in sortedPaths {
            guard let node = nodes[path] else { continue }
            var target = path
            if let parent = Self.parent(of: path), let real = resolve(parent), real != parent {
                target = real + "/" + Self.basename(path)
            }
            placed.add(target, node)
        }
        return placed
    }

    static func parent(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }

    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
