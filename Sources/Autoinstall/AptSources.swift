import Foundation

/// One `deb` entry of the host's apt configuration.
public struct AptSource: Sendable, Equatable {
    public var uri: String
    public var suites: [String]
    public var components: [String]

    public init(uri: String, suites: [String], components: [String]) {
        self.uri = uri
        self.suites = suites
        self.components = components
    }
}

/// The host's apt sources: deb822 `*.sources` files in `sources.list.d` and one-line
/// `sources.list` files. Only binary (`deb`) entries are kept, in the order apt reads them.
public enum HostAptSources {
    /// Reads the sources under `root` (`/` on a real host; tests give a directory of their own).
    public static func read(root: String = "/") -> [AptSource] {
        let base = (root as NSString).appendingPathComponent("etc/apt")
        var sources: [AptSource] = []
        let listFile = (base as NSString).appendingPathComponent("sources.list")
        if let text = try? String(contentsOfFile: listFile, encoding: .utf8) {
            sources += parseOneLine(text)
        }
        let dir = (base as NSString).appendingPathComponent("sources.list.d")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        for name in names {
            guard
                let text = try? String(contentsOfFile: (dir as NSString).appendingPathComponent(name), encoding: .utf8)
            else { continue }
            if name.hasSuffix(".sources") {
                sources += parseDeb822(text)
            } else if name.hasSuffix(".list") {
                sources += parseOneLine(text)
            }
        }
        return sources
    }

    /// `deb [options] URI SUITE [COMPONENT...]` lines.
    public static func parseOneLine(_ text: String) -> [AptSource] {
        var sources: [AptSource] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.first == "deb" else { continue }
            words.removeFirst()
            if words.first?.hasPrefix("[") == true {
                while let word = words.first {
                    words.removeFirst()
                    if word.hasSuffix("]") { break }
                }
            }
            guard words.count >= 2 else { continue }
            sources.append(AptSource(uri: words[0], suites: [words[1]], components: Array(words.dropFirst(2))))
        }
        return sources
    }

    /// deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled:`).
    public static func parseDeb822(_ text: String) -> [AptSource] {
        var sources: [AptSource] = []
        var fields: [String: String] = [:]
        var lastKey: String?
        func flush() {
            defer {
                fields = [:]
                lastKey = nil
            }
            let types = (fields["types"] ?? "").split(separator: " ").map(String.init)
            guard types.contains("deb"), (fields["enabled"] ?? "yes").lowercased() != "no" else { return }
            let suites = (fields["suites"] ?? "").split(separator: " ").map(String.init)
            let components = (fields["components"] ?? "").split(separator: " ").map(String.init)
            for uri in (fields["uris"] ?? "").split(separator: " ") where !suites.isEmpty {
                sources.append(AptSource(uri: String(uri), suites: suites, components: components))
            }
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(rawLine)
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                flush()
                continue
            }
            if line.hasPrefix("#") { continue }
            if line.hasPrefix(" ") || line.hasPrefix("\t") {
                if let key = lastKey { fields[key, default: ""] += " " + line.trimmingCharacters(in: .whitespaces) }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            lastKey = key
        }
        flush()
        return sources
    }
}
