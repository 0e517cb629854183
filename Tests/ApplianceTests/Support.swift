import Foundation
import Testing

@testable import Appliance

/// A temporary directory of description files, removed when the test ends.
final class Workspace {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "kiln-appliance-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Loads `name` and returns its diagnostics (empty when it loads).
    func diagnostics(_ name: String) -> [Diagnostic] {
        do {
            _ = try ApplianceLoader().load((path as NSString).appendingPathComponent(name))
            return []
        } catch {
            return error.diagnostics
        }
    }

    func load(_ name: String) throws -> Appliance {
        try ApplianceLoader().load((path as NSString).appendingPathComponent(name))
    }
}

/// The package's root, from this file's place in it.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A description that loads, for tests to add to.
let minimalDescription = """
    name: test
    os:
      name: debian
      version: "12"

    """
