import Appliance
import Autoinstall
import Foundation
import Lab
import Packages

#if canImport(Glibc)
    import Glibc
#endif

/// The text readers' targets. Each takes the input as a whole file, as kiln reads one from disk or
/// from an archive; an error is the right answer to most inputs, only a crash or a hang is a finding.
extension FuzzTarget {
    /// A folder of the fuzzer's own (tmpfs), so that a description's parents and `files` resolve
    /// against nothing but what the input names.
    private static let folder = scratchFolder("text")

    private static func write(_ data: UnsafeRawBufferPointer, to name: String) -> String? {
        let path = "\(folder)/\(name)"
        guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { return nil }
        return path
    }

    /// The first byte picks the dialect (odd: a BoxGrinder `.appl`, even: kiln's `.yaml`); the rest
    /// is the file. A description that loads is rendered as the install answer of its family.
    static func description(_ data: UnsafeRawBufferPointer) {
        // An empty file is left out: Foundation's `FileManager.contents(atPath:)` leaks its 4 KiB
        // buffer for one (swift-foundation's readBytesFromFile), which LeakSanitizer reports as ours.
        guard let first = data.first, data.count > 1 else { return }
        let name = first & 1 == 1 ? "fuzz.appl" : "fuzz.yaml"
        guard let path = write(UnsafeRawBufferPointer(rebasing: data.dropFirst()), to: name) else { return }
        defer { unlink(path) }
        guard let (appliance, _) = try? ApplianceLoader().loadWithWarnings(path) else { return }
        if appliance.os.name.family == .redHat {
            _ = try? KickstartRenderer().render(appliance)
        } else {
            let sources = [ArchiveSource(uri: "http://archive.invalid/debian", suite: "trixie", components: ["main"])]
            _ = try? PreseedRenderer(hostSources: sources).render(appliance)
        }
    }

    /// A lab file as `kiln serve --config` reads it.
    static func lab(_ data: UnsafeRawBufferPointer) {
        guard let path = write(data, to: "lab.yaml") else { return }
        defer { unlink(path) }
        let text = String(decoding: data, as: UTF8.self)
        _ = try? LabConfig.parse(text, path: path, absolutePath: path)
    }

    /// A kickstart as `kiln import-kickstart` reads it; one that imports is rendered back.
    static func kickstart(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        guard let result = try? KickstartImporter().read(text, name: "fuzz", directory: folder) else { return }
        _ = try? KickstartRenderer().render(result.appliance)
    }

    /// Debian's formats, each reading the same bytes: a Packages index (the streaming parser kiln
    /// reads 50 MB indexes with), control stanzas, a Release file, apt sources in both syntaxes, and
    /// every `Depends`-style field and version found in the stanzas.
    static func packages(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        let source = ArchiveSource(uri: "http://archive.invalid/debian", suite: "trixie", components: ["main"])
        _ = try? BinaryPackage.parseIndex(bytes, source: source, origin: "fuzz")
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? Release(signedText: text, source: source, inReleaseSHA256: String(repeating: "0", count: 64))
        _ = try? AptSources.parseDeb822(text, origin: "fuzz.sources")
        _ = try? AptSources.parseOneLine(text, origin: "fuzz.list")
        guard let stanzas = try? ControlFile.parse(bytes, origin: "fuzz") else { return }
        for stanza in stanzas.prefix(64) {
            for field in ["Depends", "Pre-Depends", "Provides", "Conflicts", "Breaks"] {
                if let value = stanza[field] { _ = try? Relation.parseField(value) }
            }
            if let text = stanza["Version"], let version = try? DebianVersion(text) {
                _ = DebianVersion.compare(version, version)
            }
        }
    }
}
