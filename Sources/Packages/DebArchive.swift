import Foundation

/// A `.deb` file read natively (deb(5)): an `ar` container holding `debian-binary`, a
/// `control.tar[.xz|.zst|.gz]` (the control file, maintainer scripts, md5sums, conffiles) and a
/// `data.tar[.xz|.zst|.gz]` (the files to install).
public struct DebArchive: Sendable {
    /// The `control` file.
    public var control: Stanza
    /// Every other file of control.tar by name (`postinst`, `preinst`, `md5sums`, `conffiles`,
    /// `triggers`, `shlibs` ...).
    public var controlFiles: [String: [UInt8]]

    public var name: String { control["Package"] ?? "" }
    public var architecture: String { control["Architecture"] ?? "" }

    /// The name dpkg gives the package's files in `/var/lib/dpkg/info`: `name:arch` for
    /// `Multi-Arch: same` packages, else `name`.
    public var infoName: String { control["Multi-Arch"] == "same" ? "\(name):\(architecture)" : name }

    /// Conffile paths (absolute), from the `conffiles` control file.
    public var conffiles: [String] {
        guard let text = controlFiles["conffiles"] else { return [] }
        return String(decoding: text, as: UTF8.self).split(separator: "\n").map { line in
            // "remove-on-upgrade /etc/x" flags precede the path in newer dpkg.
            String(line.split(separator: " ").last ?? "")
        }.filter { $0.hasPrefix("/") }
    }

    /// Reads the control part of the `.deb` at `path`, and hands every entry of its data part to
    /// `data` (with the reader positioned at the entry's bytes) if given.
    static func read(
        _ path: String,
        data: ((DebArchive, ArchiveReader.Entry, ArchiveReader) throws(PackagesError) -> Void)? = nil
    ) throws(PackagesError) -> DebArchive {
        let container = try ArchiveReader(path: path, format: .ar)
        var control: Stanza?
        var controlFiles: [String: [UInt8]] = [:]
        var sawData = false
        while let member = try container.nextEntry() {
            if member.path.hasPrefix("control.tar") {
                let bytes = try container.readAll()
                let tar = try ArchiveReader(bytes: bytes, format: .tar, origin: "\(path): \(member.path)")
                while let entry = try tar.nextEntry() {
                    guard entry.fileType == ArchiveReader.regularFile else { continue }
                    let name = entry.path.hasPrefix("./") ? String(entry.path.dropFirst(2)) : entry.path
                    let content = try tar.readAll()
                    if name == "control" {
                        control = try ControlFile.parse(content, origin: "\(path): control").first
                    } else {
                        controlFiles[name] = content
                    }
                }
            } else if member.path.hasPrefix("data.tar") {
                sawData = true
                guard let data else { continue }
                // deb(5) puts control.tar before data.tar, so the control part is complete here.
                guard let control else { throw PackagesError(.archive, "\(path): data.tar before control.tar") }
                let head = DebArchive(control: control, controlFiles: controlFiles)
                let bytes = try container.readAll()
                let tar = try ArchiveReader(bytes: bytes, format: .tar, origin: "\(path): \(member.path)")
                while let entry = try tar.nextEntry() { try data(head, entry, tar) }
            }
        }
        guard let control, control["Package"] != nil else {
            throw PackagesError(.archive, "\(path): not a Debian package (no control file)")
        }
        guard sawData else { throw PackagesError(.archive, "\(path): not a Debian package (no data.tar member)") }
        return DebArchive(control: control, controlFiles: controlFiles)
    }

    /// Reads only the control part of a `.deb`.
    public static func control(_ path: String) throws(PackagesError) -> DebArchive { try read(path) }
}
