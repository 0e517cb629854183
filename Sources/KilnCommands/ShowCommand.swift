import Appliance
import ArgumentParser
import Foundation

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a description as kiln builds it: parents merged, variables substituted, as YAML.",
        discussion: """
            What `kiln build` and `kiln kickstart` work from, the way `mkosi summary` shows a resolved \
            configuration: every parent merged with BoxGrinder's rules, every #NAME# substituted, passwords \
            as SHA-512 crypt hashes, defaults left out. Loading the output gives the same appliance.

            With --origin, each key is followed by a comment naming the files and lines that set it: one \
            for a value the nearest file decides, all of them for lists that parents and children add to.
            """
    )

    @Argument(help: "The description (.yaml or BoxGrinder .appl).")
    var file: String

    @Flag(help: "Say after each key which file and line set it.")
    var origin = false

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let appliance = try ApplianceLoader.loadForCommand(file)
        let yaml = ApplianceWriter.yaml(appliance)
        if progress.json {
            // The YAML as text, and with --origin every key's places as FILE:LINE:COL, nearest first.
            progress.console().result(
                Result(
                    file: file, yaml: yaml,
                    origins: origin ? Self.origins(of: file).mapValues { $0.map(\.description) } : nil))
            return
        }
        guard origin else {
            print(yaml, terminator: yaml.hasSuffix("\n") ? "" : "\n")
            return
        }
        let origins = Self.origins(of: file)
        print(Self.annotate(yaml, origins: origins), terminator: "")
    }

    /// The files of the inheritance chain, nearest first: the description, then its parents breadth
    /// first, each once.
    static func chain(_ file: String) -> [(path: String, root: YAMLNode)] {
        var result: [(path: String, root: YAMLNode)] = []
        var queue = [file]
        var seen: Set<String> = []
        while !queue.isEmpty {
            let path = queue.removeFirst()
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            guard !seen.contains(absolute), seen.count < 64,
                let text = try? String(contentsOfFile: path, encoding: .utf8),
                let root = try? YAMLComposer(file: Self.display(path)).compose(text)
            else { continue }
            seen.insert(absolute)
            result.append((path, root))
            for name in Self.parents(root) {
                if let parent = ApplianceLoader.locateParent(name, besides: path) { queue.append(parent) }
            }
        }
        return result
    }

    /// Where each key ("os", "os.name", "packages") is set, nearest file first.
    static func origins(of file: String) -> [String: [SourceMark]] {
        var origins: [String: [SourceMark]] = [:]
        for (_, root) in chain(file) {
            guard case .mapping(let pairs) = root.kind else { continue }
            for (key, value) in pairs {
                guard let name = key.scalarText else { continue }
                origins[name, default: []].append(key.mark)
                if case .mapping(let inner) = value.kind {
                    for (innerKey, _) in inner {
                        guard let innerName = innerKey.scalarText else { continue }
                        origins["\(name).\(innerName)", default: []].append(innerKey.mark)
                    }
                }
            }
        }
        return origins
    }

    /// Keys whose values parents and children add to rather than replace.
    static let accumulating: Set<String> = [
        "packages", "repos", "users", "files", "post", "services", "services.enable", "services.disable",
        "variables", "hardware.partitions", "appliances",
    ]

    /// The YAML with `# FILE:LINE` after each top-level key and each key of a top-level map.
    static func annotate(_ yaml: String, origins: [String: [SourceMark]]) -> String {
        var output = ""
        var top = ""
        var topIsList = false
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            var text = String(line)
            let indent = text.prefix { $0 == " " }.count
            let trimmed = text.drop { $0 == " " }
            if indent == 0 && trimmed.hasPrefix("-") { topIsList = true }
            if !trimmed.hasPrefix("-"), !trimmed.hasPrefix("#"), let colon = trimmed.firstIndex(of: ":"),
                indent == 0 || (indent == 2 && !topIsList)
            {
                let key = String(trimmed[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                if indent == 0 {
                    top = key
                    topIsList = false
                }
                let path = indent == 0 ? key : "\(top).\(key)"
                // A password is written as its hash.
                let marks = origins[path] ?? (path == "os.password_hash" ? origins["os.password"] : nil) ?? []
                if !marks.isEmpty {
                    let shown = accumulating.contains(path) ? marks : [marks[0]]
                    text += "  # " + shown.map { "\($0.file):\($0.line)" }.joined(separator: ", ")
                } else {
                    text += "  # default"
                }
            }
            output += text + "\n"
        }
        while output.hasSuffix("\n\n") { output.removeLast() }
        return output
    }

    private static func parents(_ root: YAMLNode) -> [String] {
        guard case .mapping(let pairs) = root.kind,
            let value = pairs.first(where: { $0.key.scalarText == "appliances" })?.value
        else { return [] }
        switch value.kind {
        case .sequence(let items): return items.compactMap(\.scalarText)
        case .scalar(let text, _): return [text]
        case .mapping: return []
        }
    }

    /// A path shown relative to the working directory when it is below it.
    private static func display(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        return absolute.hasPrefix(cwd) ? String(absolute.dropFirst(cwd.count)) : path
    }

    /// `kiln show --json`'s result: the description as kiln reads it and, with `--origin`, where each
    /// key was set (`FILE:LINE:COL`, nearest first).
    struct Result: Encodable {
        let file: String
        let yaml: String
        let origins: [String: [String]]?
    }
}
