import Foundation
import KilnTestSupport
import Testing

/// The README and docs/ as a reader of a fresh clone follows them: every relative link opens a file
/// the clone has (and its `#anchor` a heading there, as GitHub names headings), and every file of the
/// repository they name in backquotes (`docs/ci/build-appliance.sh`, `Appliances/...`) exists.
struct DocumentationLinksTests {
    static let root = KilnProgram.packageRoot
    static let topFolders = ["Appliances/", "Benchmarks/", "docs/", "Kickstarts/", "scripts/", "Sources/", "Tests/"]

    static var documents: [String] {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/docs")) ?? []
        return ["README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
    }

    /// GitHub's anchor for a heading: lowercased, punctuation other than `-` and `_` dropped, spaces
    /// as hyphens.
    static func anchor(_ heading: String) -> String {
        String(
            heading.lowercased().compactMap { character -> Character? in
                if character == " " { return "-" }
                if character.isLetter || character.isNumber || character == "-" || character == "_" { return character }
                return nil
            })
    }

    static func headings(_ text: String) -> Set<String> {
        var inFence = false
        var found: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inFence.toggle() }
            guard !inFence, line.hasPrefix("#") else { continue }
            found.insert(anchor(line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)))
        }
        return found
    }

    @Test func everyRelativeLinkOpensAFileAndHeadingOfTheClone() throws {
        #expect(Self.documents.count >= 5, "\(Self.documents)")
        let link = /\]\(([^)\s]+)\)/
        for document in Self.documents {
            let text = try String(contentsOfFile: "\(Self.root)/\(document)", encoding: .utf8)
            let folder = (document as NSString).deletingLastPathComponent
            for match in text.matches(of: link) {
                let target = String(match.1)
                if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("mailto:") {
                    continue
                }
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                let path = parts[0].isEmpty ? document : (folder as NSString).appendingPathComponent(String(parts[0]))
                let full = (("\(Self.root)/\(path)") as NSString).standardizingPath
                #expect(FileManager.default.fileExists(atPath: full), "\(document): \(target): no \(path) in the clone")
                if parts.count == 2, FileManager.default.fileExists(atPath: full) {
                    let headings = Self.headings(try String(contentsOfFile: full, encoding: .utf8))
                    #expect(headings.contains(String(parts[1])), "\(document): \(target): no such heading in \(path)")
                }
            }
        }
    }

    @Test func everyRepositoryFileNamedInBackquotesExists() throws {
        let quoted = /`([A-Za-z][A-Za-z0-9_.\/-]*)`/
        for document in Self.documents {
            let text = try String(contentsOfFile: "\(Self.root)/\(document)", encoding: .utf8)
            for match in text.matches(of: quoted) {
                let path = String(match.1)
                guard Self.topFolders.contains(where: { path.hasPrefix($0) }) else { continue }
                #expect(
                    FileManager.default.fileExists(atPath: "\(Self.root)/\(path)"),
                    "\(document) names \(path), which the clone does not have")
            }
        }
    }
}
