import Foundation
import Testing

@testable import Appliance

/// Every error in a file is reported, every time, and a missing parent gets a "did you mean".
@Suite struct EveryErrorTests {
    private func errors(_ workspace: Workspace, _ file: String) -> [String] {
        workspace.diagnostics(file).map { diagnostic in
            let shownFile = (diagnostic.mark.file as NSString).lastPathComponent
            return "\(shownFile):\(diagnostic.mark.line):\(diagnostic.mark.column): \(diagnostic.message)"
        }
    }

    @Test func duplicateKeyDoesNotHideTheOtherErrors() throws {
        let workspace = try Workspace()
        try workspace.write(
            "bad.yaml",
            minimalDescription + """
                hardware:
                  cpus: -1
                pakages: [vim]
                name: again

                """)
        let found = errors(workspace, "bad.yaml")
        #expect(
            found == [
                "bad.yaml:6:9: hardware.cpus must be between 1 and 1024",
                "bad.yaml:7:1: unknown key 'pakages' in the description; did you mean 'packages'?",
                "bad.yaml:8:1: duplicate key 'name' (first at line 1)",
            ], "\(found)")
    }

    @Test func missingParentSuggestsTheCloseNameBesideIt() throws {
        let workspace = try Workspace()
        try workspace.write("debian-base.yaml", minimalDescription)
        try workspace.write("child.yaml", "name: child\nappliances: [debain-base]\n")
        // The child has no os of its own: those errors come too, with the parent's.
        let found = errors(workspace, "child.yaml").filter { $0.contains("parent appliance") }
        #expect(found.count == 1, "\(found)")
        #expect(
            found.first?.hasPrefix("child.yaml:2:14: parent appliance 'debain-base' not found in ") == true, "\(found)")
        #expect(found.first?.hasSuffix("; did you mean 'debian-base'?") == true, "\(found)")

        // Named with its extension: the suggestion keeps it.
        try workspace.write("other.yaml", "name: other\nappliances: [debian-bsae.yaml]\n")
        let withExtension = errors(workspace, "other.yaml").filter { $0.contains("parent appliance") }
        #expect(withExtension.first?.hasSuffix("; did you mean 'debian-base.yaml'?") == true, "\(withExtension)")

        // Nothing close: no suggestion.
        try workspace.write("far.yaml", "name: far\nappliances: [fedora]\n")
        let far = errors(workspace, "far.yaml").filter { $0.contains("parent appliance") }
        #expect(far.count == 1 && far.first?.contains("did you mean") == false, "\(far)")
    }
}
