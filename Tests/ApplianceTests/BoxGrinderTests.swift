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

    @Test func anUndefinedVariableInsideAVariableIsStillAnError() throws {
        let workspace = try Workspace()
        try workspace.write(
            "a.yaml",
            minimalDescription
                + "variables:\n  MIRROR: \"http://#HOST#/debian\"\nrepos:\n  - name: main\n    baseurl: \"#MIRROR#\"\n")
        let found = workspace.diagnostics("a.yaml").map(\.message)
        #expect(found == ["baseurl uses undefined variable '#HOST#'"])
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

    /// `files` as BoxGrinder's tar took them: directories, globs, and relative folders kept.
    @Test func filesTakeDirectoriesGlobsAndKeepRelativeFolders() throws {
        let workspace = try Workspace()
        let root = workspace.path
        for (path, text) in [
            ("ntp/step-tickers", "0.pool\n"), ("scripts/setup.sh", "#!/bin/sh\n"), ("scripts/lib/common.sh", "x=1\n"),
            ("conf/a.conf", "a\n"), ("conf/b.conf", "b\n"), ("conf/skip.txt", "no\n"),
        ] {
            let file = (root as NSString).appendingPathComponent(path)
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        }
        try workspace.write(
            "a.appl",
            minimalDescription
                + "files:\n  \"/etc\": [ntp/step-tickers, \"conf/*.conf\"]\n  \"/root\": [scripts]\n")
        let (appliance, _) = try ApplianceLoader().loadWithWarnings(root + "/a.appl")
        let placed = appliance.files.flatMap { group in group.sources.map { "\(group.target)/\($0.fileName)" } }
        #expect(
            placed == [
                "/etc/ntp/step-tickers", "/etc/conf/a.conf", "/etc/conf/b.conf", "/root/scripts/lib/common.sh",
                "/root/scripts/setup.sh",
            ])
        try workspace.write("none.yaml", minimalDescription + "files:\n  \"/etc\": [\"conf/*.ini\"]\n")
        #expect(
            workspace.diagnostics("none.yaml").map(\.message).first?.hasPrefix(
                "file pattern 'conf/*.ini' matches no file") == true)
    }

    /// A description cannot read the files of whoever runs kiln unless that person allows it.
    @Test func filesOutsideTheDescriptionsFolderNeedAnOptIn() throws {
        let outside = try Workspace()
        try outside.write("secret.txt", "not for the image\n")
        let workspace = try Workspace()
        try FileManager.default.createSymbolicLink(
            atPath: workspace.path + "/link.txt", withDestinationPath: outside.path + "/secret.txt")
        for entry in [
            outside.path + "/secret.txt", "../\((outside.path as NSString).lastPathComponent)/secret.txt", "link.txt",
        ] {
            try workspace.write("a.yaml", minimalDescription + "files:\n  \"/etc\": [\"\(entry)\"]\n")
            let found = workspace.diagnostics("a.yaml")
            #expect(found.count == 1, "\(entry): \(found)")
            #expect(found.first?.message.contains("outside the description's folder") == true, "\(found)")
            #expect(found.first?.mark.line == 6)
            let loader = ApplianceLoader(allowOutsideFiles: true)
            let (appliance, warnings) = try loader.loadWithWarnings(workspace.path + "/a.yaml")
            #expect(appliance.files.first?.sources.first?.fileName == (entry == "link.txt" ? "link.txt" : "secret.txt"))
            #expect(warnings.contains { $0.message.contains("allowed by KILN_ALLOW_OUTSIDE_FILES") })
        }
    }

    /// The rewrite touches only what Kwalify read differently; everything else reads as YAML does.
    @Test(arguments: [
        ("- @core", "- '@core'"),
        ("- @core\r\n- vim\r", "- '@core'\r\n- vim\r"),
        ("- @base   # comment", "- '@base'   # comment"),
        ("packages: [ @core, \"@x\", vim ]", "packages: [ '@core', \"@x\", vim ]"),
        ("key: @it's", "key: '@it''s'"),
        (#"- "a\serial""#, #"- "a\\serial""#),
        (#"- "keep \" and \\ as YAML""#, #"- "keep \" and \\ as YAML""#),
        (#"- plain "quoted" \{ text"#, #"- plain "quoted" \{ text"#),
        (#"- 'single \{ quoted'"#, #"- 'single \{ quoted'"#),
        ("# a comment with \"\\{\" and @x", "# a comment with \"\\{\" and @x"),
        ("url: http://x/#OS_VERSION#/@y", "url: http://x/#OS_VERSION#/@y"),
        ("cmd: |\n  \"\\{\" @x\nnext: @y", "cmd: |\n  \"\\{\" @x\nnext: '@y'"),
        ("- \"multi \\d\n  line \\s\"", "- \"multi \\\\d\n  line \\\\s\""),
    ])
    func kwalifyRewrite(input: String, expected: String) {
        #expect(KwalifyText.normalized(input) == expected)
    }
}
