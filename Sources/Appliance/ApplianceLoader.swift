import Foundation
import KilnSupport

/// Reads a description file and its parents into an `Appliance`: composes the YAML (with alias
/// bombs bounded), checks every key and value, merges parents with BoxGrinder's rules,
/// substitutes `#NAME#` variables and hashes passwords given as text.
///
/// Every problem found is reported, each with its file, line and column.
package struct ApplianceLoader: Sendable {
    /// The architecture to build for whatever `hardware.arch` says (`kiln build --arch`); nil: the
    /// description's, x86_64 by default. `#ARCH#` and `#BASE_ARCH#` follow the result.
    package var arch: Architecture?
    /// Descriptions larger than this are refused before parsing.
    package var maxFileSize = 1 << 20
    /// Nodes a document may expand to through aliases.
    package var maxNodes = 100_000
    /// Characters one variable, or one string after substitution, may expand to.
    package var maxExpansion = 1 << 16
    /// Where BoxGrinder descriptions (`.appl`) find `#NAME#` variables they do not define, as
    /// BoxGrinder did. `.yaml` descriptions never read it.
    package var environment: [String: String]
    /// `files` may name files outside the description's folder (absolute paths, `..`, symbolic
    /// links leading out). Off by default: a description from elsewhere could otherwise read any
    /// file of the user running kiln into an image or an install answer served to the network.
    package var allowOutsideFiles: Bool

    package init(arch: Architecture? = nil, environment: [String: String] = [:], allowOutsideFiles: Bool = false) {
        self.arch = arch
        self.environment = environment
        self.allowOutsideFiles = allowOutsideFiles
    }

    /// Loads `path` and everything it inherits from.
    /// - Throws: `ApplianceError` with every problem found.
    package func load(_ path: String) throws(ApplianceError) -> Appliance {
        try loadWithWarnings(path).appliance
    }

    /// Loads `path` and everything it inherits from, and says what was read with a warning
    /// (BoxGrinder defaults filled in, variables taken from the environment or left unresolved).
    /// - Throws: `ApplianceError` with every problem found (and the warnings given before them).
    package func loadWithWarnings(_ path: String) throws(ApplianceError) -> (
        appliance: Appliance, warnings: [Diagnostic]
    ) {
        let log = DiagnosticLog()
        let absolute = Self.absolute(path)
        var layers: [Layer] = []
        var visited: Set<String> = []
        var main: Layer?
        if let layer = readLayer(absolute, displayPath: path, log: log) {
            main = layer
            collectParents(of: layer, stack: [absolute], layers: &layers, visited: &visited, log: log)
            layers.append(layer)
        }
        guard let main else { throw failure(log) }
        var builder = ApplianceBuilder(
            layers: layers, main: main, archOverride: arch, log: log, environment: environment,
            maxExpansion: maxExpansion,
            allowOutsideFiles: allowOutsideFiles)
        let appliance = builder.build()
        guard log.isEmpty, let appliance else { throw failure(log) }
        return (appliance, log.sortedWarnings())
    }

    private func failure(_ log: DiagnosticLog) -> ApplianceError {
        let diagnostics = log.sorted()
        let unreadable = diagnostics.allSatisfy { $0.message.hasPrefix("cannot read") }
        return ApplianceError(
            code: unreadable ? .unreadable : .invalid, diagnostics: diagnostics, warnings: log.sortedWarnings())
    }

    /// Parents depth first, each after its own parents, each once.
    private func collectParents(
        of layer: Layer, stack: [String], layers: inout [Layer], visited: inout Set<String>, log: DiagnosticLog
    ) {
        for parent in layer.appliances {
            guard let path = Self.locateParent(parent.value, besides: layer.file) else {
                let dir = (layer.file as NSString).deletingLastPathComponent
                var message = "parent appliance '\(parent.value)' not found in \(dir)"
                if let suggestion = Self.closestDescription(to: parent.value, in: dir) {
                    message += "; did you mean '\(suggestion)'?"
                }
                log.error(parent.mark, message)
                continue
            }
            if let index = stack.firstIndex(of: path) {
                let names = (stack[index...] + [path]).map { ($0 as NSString).lastPathComponent }
                log.error(parent.mark, "inheritance cycle: \(names.joined(separator: " -> "))")
                continue
            }
            guard stack.count < 32 else {
                log.error(parent.mark, "parents nested deeper than 32 levels")
                continue
            }
            if visited.contains(path) { continue }
            visited.insert(path)
            guard let parentLayer = readLayer(path, displayPath: Self.display(path, like: layer.file), log: log) else {
                continue
            }
            collectParents(of: parentLayer, stack: stack + [path], layers: &layers, visited: &visited, log: log)
            layers.append(parentLayer)
        }
    }

    private func readLayer(_ path: String, displayPath: String, log: DiagnosticLog) -> Layer? {
        let start = SourceMark(file: displayPath, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: path) else {
            log.error(start, "cannot read \(displayPath): no such file or not readable")
            return nil
        }
        guard data.count <= maxFileSize else {
            log.error(start, "description is \(data.count) bytes; more than \(maxFileSize) is refused")
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.error(start, "description is not UTF-8 text")
            return nil
        }
        var limits = YAMLComposer.Limits()
        limits.maxNodes = maxNodes
        let node: YAMLNode?
        let isBoxGrinder = (path as NSString).pathExtension == "appl"
        do {
            let composed = try YAMLComposer(file: displayPath, limits: limits).composeReporting(
                isBoxGrinder ? KwalifyText.normalized(text) : text)
            node = composed.node
            for problem in composed.problems { log.error(problem.mark, problem.message) }
        } catch {
            log.error(error.mark, error.message)
            return nil
        }
        guard let node else {
            log.error(start, "description is empty")
            return nil
        }
        var layer = Layer(root: node, file: path, log: log)
        layer.file = path
        return layer
    }

    /// `name` beside `file`: as given, then with the child's extension, `.yaml`, `.yml`, `.appl`.
    package static func locateParent(_ name: String, besides file: String) -> String? {
        let dir = (file as NSString).deletingLastPathComponent
        let ext = (file as NSString).pathExtension
        var candidates = [name]
        for suffix in [ext, "yaml", "yml", "appl"] where !suffix.isEmpty {
            candidates.append("\(name).\(suffix)")
        }
        for candidate in candidates {
            let path = ((dir as NSString).appendingPathComponent(candidate) as NSString).standardizingPath
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return path
            }
        }
        return nil
    }

    /// The description beside the missing parent whose name is closest to `name`, written as `name`
    /// was (with its extension when `name` has one).
    static func closestDescription(to name: String, in dir: String) -> String? {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let descriptions = files.filter { ["yaml", "yml", "appl"].contains(($0 as NSString).pathExtension) }
        let written =
            (name as NSString).pathExtension.isEmpty
            ? descriptions.map { ($0 as NSString).deletingPathExtension } : descriptions
        return closest(to: name, in: written)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        let cwd = FileManager.default.currentDirectoryPath
        return ((cwd as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// Parent paths shown relative to the working directory when the child's was given that way.
    private static func display(_ path: String, like child: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }
}
