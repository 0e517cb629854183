import Crypto
import Foundation
import KilnSupport

/// The packages of a lockfile unpacked on the host into one uncompressed tar that the builder
/// guest only has to extract onto the target filesystem (`tar -xpf bundle.tar -C /target`), so
/// that no decompression and no `dpkg --unpack` runs under emulation.
///
/// The tar holds, in lockfile order:
/// 0. with `mergedUsr` (Debian 12 and later): `bin`, `sbin`, `lib`, `lib64` as symbolic links into
///    `usr`, and every package path below them written below `usr` instead (as debootstrap and
///    mmdebstrap set up merged /usr; the dpkg database keeps the packaged paths);
/// 1. every package's files (`data.tar`), owners and modes as packaged, modification times
///    clamped to `SOURCE_DATE_EPOCH` when given;
/// 2. dpkg's database for them: `var/lib/dpkg/info/<pkg>.list`, `.md5sums`, `.conffiles`, the
///    maintainer scripts (`preinst`, `postinst`, `prerm`, `postrm`, `config`, `templates`,
///    `triggers`, `shlibs`, `symbols`) and `var/lib/dpkg/status` with every package
///    `install ok unpacked`;
/// 3. `var/lib/kiln/preinst-order`: the packages whose `preinst` must run, in order, one per line
///    as `INFONAME PACKAGE ARCH` (the info file is `/var/lib/dpkg/info/INFONAME.preinst`).
///
/// In the guest, as multistrap does after `dpkg -x`: extract, run each listed
/// `/var/lib/dpkg/info/INFONAME.preinst install` in order with the variables dpkg gives scripts
/// (`DPKG_MAINTSCRIPT_PACKAGE=PACKAGE DPKG_MAINTSCRIPT_ARCH=ARCH DPKG_MAINTSCRIPT_NAME=preinst
/// DPKG_ROOT=`; dpkg-maintscript-helper needs them), then `dpkg --configure -a` (with
/// `--force-unsafe-io`), which runs every postinst in dependency order and the triggers once.
public struct RootfsBundle: Sendable {
    /// What was written.
    public struct Summary: Sendable, Equatable {
        public var path: String
        public var packages: Int
        public var entries: Int
        public var bytes: Int64
    }

    static let scripts = [
        "preinst", "postinst", "prerm", "postrm", "config", "templates", "triggers", "shlibs", "symbols",
    ]

    /// Writes the bundle for `packages` (from `PackageCache.fetch`) to `path` atomically.
    ///
    /// - Parameter epoch: `SOURCE_DATE_EPOCH`: later modification times are clamped to it, and the
    ///   generated files get it (0 when nil), so that the bundle is reproducible.
    public static func write(
        _ packages: [LocalPackage], to path: String, epoch: Int64? = nil, mergedUsr: Bool = true,
        progress: ProgressSink = .none
    ) throws(PackagesError) -> Summary {
        let output: AtomicOutput
        do {
            output = try AtomicOutput(path)
        } catch {
            throw PackagesError(.cache, error.description)
        }
        defer { output.discard() }
        let writer = try ArchiveWriter(path: output.temporaryPath)
        let stamp = epoch ?? 0
        var entries = 0
        var status: [String] = []
        var preinstOrder: [String] = []
        var info: [(name: String, bytes: [UInt8], mode: UInt32)] = []
        progress(.step("unpack", "unpacking \(packages.count) packages on the host"))
        if mergedUsr {
            try writer.directory("usr", mtime: stamp)
            for name in Self.mergedDirectories {
                try writer.directory("usr/\(name)", mtime: stamp)
                try writer.symlink(name, to: "usr/\(name)", mtime: stamp)
                entries += 2
            }
            entries += 1
        }

        for (number, local) in packages.enumerated() {
            var listed: [String] = []
            var conffileDigests: [String: String] = [:]
            var wantedConffiles: Set<String>?
            let deb = try DebArchive.read(local.path) { head, entry, reader throws(PackagesError) in
                let conffiles = wantedConffiles ?? Set(head.conffiles)
                wantedConffiles = conffiles
                var entry = entry
                let name = Self.normalize(entry.path)
                listed.append(name.isEmpty ? "/." : "/" + name)
                if name.isEmpty { return }
                if mergedUsr && Self.mergedDirectories.contains(name) && entry.fileType == ArchiveReader.directory {
                    return
                }
                entry.path = mergedUsr ? Self.merge(name) : name
                if let target = entry.hardlinkTarget {
                    entry.hardlinkTarget = mergedUsr ? Self.merge(Self.normalize(target)) : Self.normalize(target)
                }
                if let epoch, entry.modificationTime > epoch { entry.modificationTime = epoch }
                try writer.header(entry)
                entries += 1
                guard entry.fileType == ArchiveReader.regularFile, entry.hardlinkTarget == nil else { return }
                var md5: Insecure.MD5? = conffiles.contains("/" + name) ? Insecure.MD5() : nil
                try reader.readData { chunk throws(PackagesError) in
                    try writer.write(chunk)
                    md5?.update(bufferPointer: chunk)
                }
                if let digest = md5?.finalize() { conffileDigests["/" + name] = digest.hex }
            }
            guard deb.name == local.package.name else {
                throw PackagesError(
                    .archive, "\(local.path): holds package \(deb.name), the lockfile says \(local.package.name)")
            }
            let infoName = deb.infoName
            info.append(("\(infoName).list", Array((listed.joined(separator: "\n") + "\n").utf8), 0o644))
            if let md5sums = deb.controlFiles["md5sums"] { info.append(("\(infoName).md5sums", md5sums, 0o644)) }
            if let conffiles = deb.controlFiles["conffiles"] {
                info.append(("\(infoName).conffiles", conffiles, 0o644))
            }
            for script in scripts {
                guard let bytes = deb.controlFiles[script] else { continue }
                let executable = !["templates", "triggers", "shlibs", "symbols"].contains(script)
                info.append(("\(infoName).\(script)", bytes, executable ? 0o755 : 0o644))
                if script == "preinst" { preinstOrder.append("\(infoName) \(deb.name) \(deb.architecture)") }
            }
            status.append(Self.statusStanza(deb, conffiles: deb.conffiles.map { ($0, conffileDigests[$0]) }))
            progress(.progress("unpack", completed: Int64(number + 1), total: Int64(packages.count)))
        }

        for directory in [
            "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info", "var/lib/dpkg/triggers",
            "var/lib/dpkg/updates", "var/lib/kiln",
        ] {
            try writer.directory(directory, mtime: stamp)
        }
        for item in info.sorted(by: { $0.name < $1.name }) {
            try writer.file("var/lib/dpkg/info/\(item.name)", item.bytes, mode: item.mode, mtime: stamp)
        }
        // Format 1: info files of Multi-Arch: same packages are named `name:arch` (dpkg's db layout).
        try writer.file("var/lib/dpkg/info/format", Array("1\n".utf8), mtime: stamp)
        try writer.file("var/lib/dpkg/status", Array(status.joined(separator: "\n").utf8), mtime: stamp)
        try writer.file("var/lib/dpkg/available", [], mtime: stamp)
        try writer.file("var/lib/kiln/preinst-order", Array(preinstOrder.map { $0 + "\n" }.joined().utf8), mtime: stamp)
        entries += 7 + info.count + 4
        try writer.close()
        do {
            try output.commit()
        } catch {
            throw PackagesError(.cache, error.description)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil
        return Summary(path: path, packages: packages.count, entries: entries, bytes: size ?? 0)
    }

    static let mergedDirectories = ["bin", "sbin", "lib", "lib64"]

    /// `bin/x` becomes `usr/bin/x` (and so for the other merged directories).
    static func merge(_ path: String) -> String {
        for name in mergedDirectories where path.hasPrefix(name + "/") { return "usr/" + path }
        return path
    }

    /// `./usr/bin/x` and `/usr/bin/x` become `usr/bin/x`; `./` becomes empty.
    static func normalize(_ path: String) -> String {
        var slice = Substring(path)
        while slice.hasPrefix("./") { slice = slice.dropFirst(2) }
        while slice.hasPrefix("/") { slice = slice.dropFirst() }
        if slice == "." { return "" }
        while slice.hasSuffix("/") { slice = slice.dropLast() }
        return String(slice)
    }

    /// The package's control fields as dpkg's status file keeps them, marked unpacked.
    static func statusStanza(_ deb: DebArchive, conffiles: [(String, String?)]) -> String {
        var lines: [String] = []
        for (index, field) in deb.control.fields.enumerated() {
            let value = field.value.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map {
                $0.offset == 0 ? String($0.element) : " " + $0.element
            }.joined(separator: "\n")
            lines.append("\(field.name): \(value)")
            if index == 0 { lines.append("Status: install ok unpacked") }
        }
        if !conffiles.isEmpty {
            lines.append("Conffiles:")
            for (path, digest) in conffiles { lines.append(" \(path) \(digest ?? "newconffile")") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
