import Foundation
import Testing

@testable import Appliance

private let boxgrinderFixtures =
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/boxgrinder"

/// BoxGrinder descriptions (`.appl`) read the way BoxGrinder read them.
@Suite struct BoxGrinderTests {
    private func load(_ name: String, environment: [String: String] = [:]) throws -> (Appliance, [Diagnostic]) {
        try ApplianceLoader(environment: environment).loadWithWarnings("\(boxgrinderFixtures)/\(name)")
    }

    @Test func unquotedGroupsAndBackslashesAreReadAsKwalifyDid() throws {
        let (appliance, _) = try load("centos6-lenient.appl", environment: ["provider": "ec2"])
        #expect(appliance.packages == ["@core", "@base", "openssh-server", "@server-policy"])
        #expect(
            appliance.post.base == [
                #"sed -i 's/^\([0-9]\{9\}\)$/x/' /etc/sysconfig/clock"#,
                #"echo console=ttyS0 > /tmp/a\serial"#,
                #"printf '%s\n' "quoted" > /etc/motd"#,
                "bash /root/setup.sh ec2 centos",
            ])
    }

    @Test func theSameTextAsYAMLStaysStrict() throws {
        let workspace = try Workspace()
        let text = try String(contentsOfFile: "\(boxgrinderFixtures)/centos6-lenient.appl", encoding: .utf8)
        try workspace.write("strict.yaml", text)
        let found = workspace.diagnostics("strict.yaml")
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("malformed YAML") == true, "\(found)")
    }

    @Test func noRootPasswordGetsBoxGrindersDefaultWithAWarning() throws {
        let (appliance, warnings) = try load("centos6-lenient.appl", environment: ["provider": "ec2"])
        let hash = try #require(appliance.os.passwordHash)
        #expect(PasswordHash.crypt("boxgrinder", setting: hash) == hash)
        let warning = try #require(warnings.first { $0.message.contains("no os.password") })
        #expect(warning.severity == .warning)
        #expect(warning.description.contains("centos6-lenient.appl:5:9: warning: no os.password"), "\(warning)")
        #expect(warning.message.contains("'boxgrinder'"))
    }

    @Test func yamlWithoutPasswordKeepsRootLocked() throws {
        let workspace = try Workspace()
        try workspace.write("a.yaml", minimalDescription)
        let (appliance, warnings) = try ApplianceLoader().loadWithWarnings(workspace.path + "/a.yaml")
        #expect(appliance.os.passwordHash == nil)
        #expect(warnings.isEmpty)
    }

    @Test func scientificLinuxIsTheRedHatFamily() throws {
        let (appliance, warnings) = try load("sl6.appl")
        #expect(appliance.os.name == .sl)
        #expect(appliance.os.name.family == .redHat)
        #expect(appliance.packages == ["@core", "openssh-server"])
        #expect(warnings.isEmpty, "\(warnings)")
    }

    @Test func unknownVariablesComeFromTheEnvironmentWithAWarning() throws {
        let (appliance, warnings) = try load("centos6-lenient.appl", environment: ["provider": "vmware"])
        #expect(appliance.post.base.last == "bash /root/setup.sh vmware centos")
        #expect(
            warnings.contains {
                $0.message.contains("'#provider#' is not defined here; taken from the environment")
                    && $0.mark.line == 21
            }, "\(warnings)")
    }

    @Test func variablesLeftUnresolvedAreKeptAndWarnedAbout() throws {
        let (appliance, warnings) = try load("centos6-lenient.appl")
        #expect(appliance.post.base.last == "bash /root/setup.sh #provider# centos")
        let warning = try #require(warnings.first { $0.message.contains("#provider#") })
        #expect(warning.message.contains("neither a variable nor set in the environment"))
        #expect(warning.mark.line == 21 && warning.mark.column == 7)
    }

    @Test func yamlDescriptionsNeverReadTheEnvironment() throws {
        let workspace = try Workspace()
        try workspace.write("a.yaml", minimalDescription + "post:\n  base: [\"echo #provider#\"]\n")
        let loader = ApplianceLoader(environment: ["provider": "ec2"])
        let (appliance, warnings) = try loader.loadWithWarnings(workspace.path + "/a.yaml")
        #expect(appliance.post.base == ["echo #provider#"])
        #expect(warnings.isEmpty)
    }

    /// 30 variables, each twice the one before: 2^30 characters if expanded. Refused at once, at
    /// the first variable past the limit.
    @Test(.timeLimit(.minutes(1))) func selfDoublingVariablesAreRefusedAtTheVariable() throws {
        var text = minimalDescription + "variables:\n  V0: \"ab\"\n"
        for index in 1..<30 { text += "  V\(index): \"#V\(index - 1)##V\(index - 1)#\"\n" }
        text += "post:\n  base: [\"echo #V29#\"]\n"
        #expect(text.utf8.count < 1024)
        let workspace = try Workspace()
        try workspace.write("bomb.yaml", text)
        let found = workspace.diagnostics("bomb.yaml")
        // V0 is 2 characters, so V16 (2^17) is the first past 65,536; it is on line 22.
        let first = try #require(found.first)
        #expect(first.message == "variable 'V16' expands to more than 65536 characters", "\(found)")
        #expect(first.mark.line == 22 && first.mark.column == 8)
        #expect(found.count <= 2, "\(found)")
    }

    @Test(.timeLimit(.minutes(1))) func longVariableChainsAreRefused() throws {
        var text = minimalDescription + "variables:\n"
        for index in 0..<200 { text += "  C\(index): \"x#C\(index + 1)#\"\n" }
        text += "  C200: \"end\"\n"
        let workspace = try Workspace()
        try workspace.write("chain.yaml", text)
        let found = workspace.diagnostics("chain.yaml")
        #expect(!found.isEmpty)
        #expect(found.allSatisfy { $0.message.contains("is reached through more than 32 variables") }, "\(found)")
    }
}
