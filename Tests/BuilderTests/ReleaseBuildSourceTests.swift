import Foundation
import KilnTestSupport
import Testing

/// `make demo` builds every product with `swift build -c release`, where modules are not compiled
/// for testing: a `@testable import` in Sources/ (the fuzz targets had one) breaks the README's
/// first command while every debug build and test still passes.
struct ReleaseBuildSourceTests {
    @Test func noSourceFileImportsForTesting() throws {
        let root = "\(KilnProgram.packageRoot)/Sources"
        let files = try #require(FileManager.default.enumerator(atPath: root))
        var found: [String] = []
        var count = 0
        for case let file as String in files where file.hasSuffix(".swift") {
            count += 1
            let text = try String(contentsOfFile: "\(root)/\(file)", encoding: .utf8)
            if text.split(separator: "\n").contains(where: { $0.hasPrefix("@testable import") }) {
                found.append(file)
            }
        }
        #expect(count > 100, "only \(count) Swift files under \(root)")
        #expect(found.isEmpty, "@testable import in \(found); use `package` access for what they need")
    }
}
