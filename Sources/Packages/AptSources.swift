import Foundation

/// One suite of one Debian archive: where its `dists/<suite>/InRelease` lives, which components to
/// read, and which keyring signs it. apt's sources, a description's `repos`, and lockfiles all
/// become these.
package struct ArchiveSource: Sendable, Hashable, Codable {
    /// The archive's base URI without a trailing slash (the part before `dists/` and `pool/`).
    package var uri: String
    package var suite: String
    package var components: [String]
    /// The keyring `gpgv` checks the Release signature with; `nil` means `defaultKeyring`.
    package var keyring: String?

    /// Debian's archive keyring, from the debian-archive-keyring package.
    package static let defaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    package init(uri: String, suite: String, components: [String], keyring: String? = nil) {
        var base = uri
        while base.hasSuffix("/") { base.removeLast() }
        self.uri = base
        self.suite = suite
        self.components = components
        self.keyring = keyring
    }

    /// The keyring actually used.
    package var effectiveKeyring: String { keyring ?? Self.defaultKeyring }

    /// `<uri>/dists/<suite>/<path>`.
    package func distsURL(_ path: String) -> String { "\(uri)/dists/\(suite)/\(path)" }

    /// The URL of a file named by a Packages index's `Filename` field.
    package func poolURL(_ filename: String) -> String { "\(uri)/\(filename)" }

    /// `URI SUITE`, how messages name the source.
    package var label: String { "\(uri) \(suite)" }
}

/// The host's apt sources: deb822 `.sources` files and one-line `.list` files. Only binary (`deb`)
/// entries are kept; `deb-src` entries and disabled stanzas are skipped.
package enum AptSources {
    package static let defaultListFile = "/etc/apt/sources.list"
    package static let defaultPartsDirectory = "/etc/apt/sources.list.d"

    /// Reads `listFile` and every `*.list` and `*.sources` file in `partsDirectory`, in apt's order
    /// (the main file first, then the parts by name). Missing files are not errors.
    ///
    /// - Parameter architecture: entries restricted to other architectures (`arch=`,
    ///   `Architectures:`) are skipped.
    package static func load(
        listFile: String = defaultListFile, partsDirectory: String = defaultPartsDirectory,
        architecture: String = "amd64"
    ) throws(PackagesError) -> [ArchiveSource] {
        var sources: [ArchiveSource] = []
        if let text = try readIfPresent(listFile) {
            sources += try parseOneLine(text, origin: listFile, architecture: architecture)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: partsDirectory)) ?? []
        for name in names.sorted() {
            let path = "\(partsDirectory)/\(name)"
            if name.hasSuffix(".list"), let text = try readIfPresent(path) {
                sources += try parseOneLine(text, origin: path, architecture: architecture)
            } else if name.hasSuffix(".sources"), let text = try readIfPresent(path) {
                sources += try parseDeb822(text, origin: path, architecture: architecture)
            }
        }
        var seen: Set<ArchiveSource> = []
        return sources.filter { seen.insert($0).inserted }
    }

    /// Parses a deb822 `.sources` file (sources.list(5), "DEB822-STYLE FORMAT").
    package static func parseDeb822(_ text: String, origin: String, architecture: String = "amd64")
        throws(PackagesError) -> [ArchiveSource]
    {
        let stanzas: [Stanza]
        do {
            stanzas = try ControlFile.parse(text, origin: origin)
        } catch {
            throw PackagesError(.sources, error.message)
        }
        var sources: [ArchiveSource] = []
        for stanza in stanzas {
            let place = "\(origin):\(stanza.line)"
            if let enabled = stanza["Enabled"], enabled.lowercased() == "no" { continue }
            let types = words(stanza["Types"])
            guard !types.isEmpty else { throw PackagesError(.sources, "\(place): the stanza has no Types field") }
            guard types.contains("deb") else { continue }
            if let arches = stanza["Architectures"], !words(arches).contains(architecture) { continue }
            let uris = words(stanza["URIs"])
            let suites = words(stanza["Suites"])
            guard !uris.isEmpty else { throw PackagesError(.sources, "\(place): the stanza has no URIs field") }
            guard !suites.isEmpty else { throw PackagesError(.sources, "\(place): the stanza has no Suites field") }
            let components = words(stanza["Components"])
            let keyring = try signedBy(stanza["Signed-By"], place: place)
            for uri in uris {
                for suite in suites {
                    sources.append(
                        try source(uri: uri, suite: suite, components: components, keyring: keyring, place: place))
                }
            }
        }
        return sources
    }

    /// Parses a one-line-style `sources.list`: `deb [ options ] uri suite [component...]`.
    package static func parseOneLine(_ text: String, origin: String, architecture: String = "amd64")
        throws(PackagesError) -> [ArchiveSource]
    {
        var sources: [ArchiveSource] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let place = "\(origin):\(index + 1)"
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            var tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let type = tokens.first else { continue }
            tokens.removeFirst()
            guard type == "deb" || type == "deb-src" else {
                throw PackagesError(.sources, "\(place): unknown entry type '\(type)'")
            }
            var options: [String: String] = [:]
            if let first = tokens.first, first.hasPrefix("[") {
                var optionText = ""
                while let token = tokens.first {
                    tokens.removeFirst()
                    optionText += " " + token
                    if token.hasSuffix("]") { break }
                }
                guard optionText.hasSuffix("]") else { throw PackagesError(.sources, "\(place): unterminated '['") }
                let inner = optionText.dropFirst(2).dropLast()
                for option in inner.split(separator: " ") where !option.isEmpty {
                    let parts = option.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else {
                        throw PackagesError(.sources, "\(place): option '\(option)' is not 'name=value'")
                    }
                    options[String(parts[0])] = String(parts[1])
                }
            }
            guard type == "deb" else { continue }
            guard tokens.count >= 2 else { throw PackagesError(.sources, "\(place): expected a URI and a suite") }
            if let arches = options["arch"], !arches.split(separator: ",").contains(Substring(architecture)) {
                continue
            }
            let keyring = try signedBy(options["signed-by"]?.replacingOccurrences(of: ",", with: " "), place: place)
            sources.append(
                try source(
                    uri: tokens[0], suite: tokens[1], components: Array(tokens.dropFirst(2)), keyring: keyring,
                    place: place))
        }
        return sources
    }

    /// The host's suites moved to the description's release: with a bookworm host and a trixie
    /// description, `bookworm-updates` becomes `trixie-updates`. The host's release is its suite
    /// without a dash.
    package static func retarget(_ sources: [ArchiveSource], to codename: String) -> [ArchiveSource] {
        guard let hostRelease = sources.map(\.suite).first(where: { !$0.contains("-") }), hostRelease != codename else {
            return sources
        }
        return sources.map { source in
            var moved = source
            if source.suite == hostRelease || source.suite.hasPrefix(hostRelease + "-") {
                moved.suite = codename + source.suite.dropFirst(hostRelease.count)
            }
            return moved
        }
    }

    private static func source(uri: String, suite: String, components: [String], keyring: String?, place: String)
        throws(PackagesError) -> ArchiveSource
    {
        guard uri.hasPrefix("http://") || uri.hasPrefix("https://") || uri.hasPrefix("file:") else {
            throw PackagesError(.sources, "\(place): unsupported URI '\(uri)' (kiln reads http, https and file)")
        }
        guard !suite.hasSuffix("/") else {
            throw PackagesError(.sources, "\(place): flat repository '\(suite)' is not supported")
        }
        guard !components.isEmpty else {
            throw PackagesError(.sources, "\(place): suite '\(suite)' names no components")
        }
        return ArchiveSource(uri: uri, suite: suite, components: components, keyring: keyring)
    }

    /// Signed-By names keyring files (or fingerprints, or an inline key). kiln checks with `gpgv`
    /// against one file, so it takes the first absolute path and rejects inline keys.
    private static func signedBy(_ value: String?, place: String) throws(PackagesError) -> String? {
        guard let value else { return nil }
        if value.contains("BEGIN PGP") {
            throw PackagesError(.sources, "\(place): inline Signed-By keys are not supported; name a keyring file")
        }
        return words(value).first { $0.hasPrefix("/") }
    }

    private static func words(_ value: String?) -> [String] {
        guard let value else { return [] }
        return value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }

    private static func readIfPresent(_ path: String) throws(PackagesError) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PackagesError(.sources, "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
