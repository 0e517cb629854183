import Crypto
import Foundation
import KilnArchive

/// The target's files, unpacked on the host: every package's `data.tar` merged into one
/// uncompressed tar stream, plus a dpkg database that lists each package as unpacked.
///
/// Decompressing and unpacking natively is where kiln wins under TCG (SPEC, "Where build time goes"):
/// the guest only writes the stream out and runs what needs the target's own programs (maintainer
/// scripts, triggers, the boot loader).
///
/// What this writes for a set of packages is part of the configured base that `BaseCache` keeps:
/// a change here that gives another tree for the same packages must change `BaseCache.format`.
///
/// The layout is merged-/usr, as Debian 12 installs it: `bin`, `sbin` and `lib*` are links into
/// `usr`, and package paths under them are written to their place in `usr`. dpkg's file lists keep
/// the paths as the packages name them, which is what dpkg and `usr-is-merged` expect.
package struct TargetRoot: Sendable {
    /// One unpacked package.
    package struct Package: Sendable, Equatable {
        package var name: String
        package var version: String
        package var architecture: String
        /// The name dpkg files its database entries under (`libc6:amd64` for Multi-Arch: same).
        package var databaseKey: String
        package var hasPreinst: Bool
        package var preDepends: String?
    }

    /// The packages in the order they were unpacked.
    package var packages: [Package]

    static let mergedDirectories = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]

    /// Writes the tar stream of `debs` to `tarPath`.
    ///
    /// - Parameters:
    ///   - debs: local `.deb` files, already verified.
    ///   - architecture: the target's dpkg architecture.
    ///   - modificationTime: time of entries kiln makes itself (SOURCE_DATE_EPOCH).
    package static func write(
        debs: [String], architecture: String = "amd64", to tarPath: String, modificationTime: Int64
    ) throws(BuilderError) -> TargetRoot {
        do {
            let writer = try ArchiveWriter(path: tarPath, format: .gnuTar)
            var state = State(writer: writer, time: modificationTime)
            try state.directory("")
            try state.directory("usr")
            for name in mergedDirectories {
                try state.directory("usr/\(name)")
                try state.writer.add(
                    ArchiveEntry(
                        path: name, kind: .symlink(target: "usr/\(name)"), permissions: 0o777,
                        modificationTime: modificationTime))
            }
            var unpacked: [(Package, members: [String: (permissions: UInt32, contents: [UInt8])], files: [String])] = []
            for deb in debs {
                let archive = DebianArchive(path: deb)
                let (package, members) = try describe(archive, path: deb, architecture: architecture)
                var files: [String] = []
                try archive.forEachDataEntry { (entry, reader) throws(ArchiveError) in
                    files.append(entry.path.isEmpty ? "/." : "/" + entry.path)
                    try state.copy(entry, from: reader)
                }
                unpacked.append((package, members, files))
            }
            try writeDatabase(unpacked, into: &state, architecture: architecture)
            try writer.finish()
            return TargetRoot(packages: unpacked.map(\.0))
        } catch let error as ArchiveError {
            throw BuilderError("cannot unpack the target's packages: \(error)")
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError("cannot unpack the target's packages: \(error)")
        }
    }

    /// The packages `write` would unpack, read from their control members only (a build that starts
    /// from a cached configured base needs their names, not their files).
    package static func describe(debs: [String], architecture: String = "amd64") throws(BuilderError) -> TargetRoot {
        do {
            var packages: [Package] = []
            for deb in debs {
                packages.append(try describe(DebianArchive(path: deb), path: deb, architecture: architecture).0)
            }
            return TargetRoot(packages: packages)
        } catch let error as ArchiveError {
            throw BuilderError("cannot read the target's packages: \(error)")
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError("cannot read the target's packages: \(error)")
        }
    }

    private static func describe(_ archive: DebianArchive, path: String, architecture: String) throws
        -> (Package, [String: (permissions: UInt32, contents: [UInt8])])
    {
        let members = try archive.controlMembers()
        let fields = ControlStanza.parse(String(decoding: members["control"]?.contents ?? [], as: UTF8.self))
        let field = { (key: String) in fields.first { $0.key == key }?.value }
        guard let name = field("Package"), let version = field("Version") else {
            throw BuilderError("\(path): control file without Package or Version")
        }
        let arch = field("Architecture") ?? architecture
        let key = field("Multi-Arch") == "same" ? "\(name):\(arch)" : name
        let package = Package(
            name: name, version: version, architecture: arch, databaseKey: key,
            hasPreinst: members["preinst"] != nil, preDepends: field("Pre-Depends"))
        return (package, members)
    }

    /// `var/lib/dpkg`: status with every package "install ok unpacked" (conffiles marked new, as dpkg
    /// marks them while unpacking), and per package its file list and control members.
    private static func writeDatabase(
        _ unpacked: [(Package, members: [String: (permissions: UInt32, contents: [UInt8])], files: [String])],
        into state: inout State, architecture: String
    ) throws(ArchiveError) {
        let admin = "var/lib/dpkg"
        for dir in [
            "var", "var/lib", admin, "\(admin)/info", "\(admin)/updates", "\(admin)/triggers",
            "\(admin)/alternatives", "\(admin)/parts",
        ] {
            try state.directory(dir)
        }
        var status: [String] = []
        for (package, members, files) in unpacked {
            let info = "\(admin)/info/\(package.databaseKey)"
            try state.file("\(info).list", Array((files.joined(separator: "\n") + "\n").utf8))
            for (member, value) in members.sorted(by: { $0.key < $1.key }) where member != "control" {
                try state.file("\(info).\(member)", value.contents, permissions: value.permissions)
            }
            var lines = String(decoding: members["control"]?.contents ?? [], as: UTF8.self)
                .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            lines.insert("Status: install ok unpacked", at: min(1, lines.count))
            if let conffiles = members["conffiles"] {
                let names = String(decoding: conffiles.contents, as: UTF8.self).split(separator: "\n")
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { $0.hasPrefix("/") }
                if !names.isEmpty {
                    lines.append("Conffiles:")
                    lines += names.map { " \($0) newconffile" }
                }
            }
            status.append(lines.joined(separator: "\n"))
        }
        try state.file("\(admin)/status", Array((status.joined(separator: "\n\n") + "\n").utf8))
        for empty in ["available", "diversions", "statoverride"] {
            try state.file("\(admin)/\(empty)", [])
        }
        try state.file("\(admin)/arch", Array("\(architecture)\n".utf8))
    }

    /// The writer and what it has written, for merging many packages into one stream.
    private struct State {
        let writer: ArchiveWriter
        let time: Int64
        var directories: Set<String> = []

        init(writer: ArchiveWriter, time: Int64) {
            self.writer = writer
            self.time = time
        }

        mutating func directory(_ path: String) throws(ArchiveError) {
            guard directories.insert(path).inserted else { return }
            try writer.add(ArchiveEntry(path: path, kind: .directory, permissions: 0o755, modificationTime: time))
        }

        mutating func file(_ path: String, _ contents: [UInt8], permissions: UInt32 = 0o644) throws(ArchiveError) {
            try writer.addFile(
                ArchiveEntry(path: path, kind: .file, permissions: permissions, modificationTime: time),
                contents: contents)
        }

        /// Copies one `data.tar` entry, moved into `usr` where the layout merges it. A directory
        /// that another package already made is not written again: the first one's owner and mode stay,
        /// as dpkg leaves them.
        mutating func copy(_ entry: ArchiveEntry, from reader: ArchiveReader) throws(ArchiveError) {
            var entry = entry
            // The top-level directories are the layout's own links (trixie's base-files ships
            // them too, as `bin -> usr/bin`: the same links, already written).
            if entry.path.isEmpty || TargetRoot.mergedDirectories.contains(entry.path) { return }
            entry.path = TargetRoot.merged(entry.path)
            if case .hardlink(let target) = entry.kind { entry.kind = .hardlink(target: TargetRoot.merged(target)) }
            if entry.kind == .directory {
                guard directories.insert(entry.path).inserted else { return }
                try writer.add(entry)
                return
            }
            try writer.add(entry)
            if entry.kind == .file && entry.size > 0 {
                try reader.readData { (chunk) throws(ArchiveError) in try writer.write(chunk) }
            }
        }
    }

    /// `bin/ls` becomes `usr/bin/ls`; other paths stay.
    static func merged(_ path: String) -> String {
        for name in mergedDirectories where path == name || path.hasPrefix(name + "/") {
            return "usr/" + path
        }
        return path
    }
}
