import Foundation
import Testing

@testable import Appliance

/// Every class of bad input gives an error naming FILE:LINE:COL.
@Suite struct BadInputTests {
    /// Loads `text` and returns `LINE:COL: MESSAGE` for each diagnostic, checking the file name.
    private func errors(_ text: String, file: String = "bad.yaml", extra: [String: String] = [:]) throws -> [String] {
        let workspace = try Workspace()
        for (name, body) in extra { try workspace.write(name, body) }
        try workspace.write(file, text)
        let diagnostics = workspace.diagnostics(file)
        return diagnostics.map { diagnostic in
            let shownFile = (diagnostic.mark.file as NSString).lastPathComponent
            return "\(shownFile):\(diagnostic.mark.line):\(diagnostic.mark.column): \(diagnostic.message)"
        }
    }

    @Test func malformedYAML() throws {
        let found = try errors("name: x\nos: [debian\npackages: a\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("bad.yaml:3:") == true, "\(found)")
        #expect(found.first?.contains("malformed YAML") == true)
    }

    @Test func wrongTypes() throws {
        let found = try errors(minimalDescription + "packages: nginx\nhardware:\n  cpus: two\n  memory: [1]\n")
        #expect(
            found == [
                "bad.yaml:5:11: packages must be a list, not a scalar",
                "bad.yaml:7:9: hardware.cpus must be a whole number, not 'two'",
                "bad.yaml:8:11: hardware.memory must be a number of GB or text with a unit, not a list",
            ])
    }

    @Test func unknownKeysSuggestTheClosestOne() throws {
        let found = try errors(minimalDescription + "pakages: [nginx]\nhardware:\n  memroy: 512\n")
        #expect(
            found == [
                "bad.yaml:5:1: unknown key 'pakages' in the description; did you mean 'packages'?",
                "bad.yaml:7:3: unknown key 'memroy' in hardware; did you mean 'memory'?",
            ])
    }

    @Test func zeroAndNegativeSizes() throws {
        let found = try errors(
            minimalDescription + """
                hardware:
                  partitions:
                    "/":
                      size: 0
                    "/var":
                      size: -2GiB
                    swap:
                      size: 12XB
                """)
        #expect(found.count == 3)
        #expect(found[0] == "bad.yaml:8:13: the size of partition '/' must be greater than zero, not 0")
        #expect(found[1] == "bad.yaml:10:13: the size of partition '/var' must be greater than zero, not -2GiB")
        #expect(found[2].hasPrefix("bad.yaml:12:13: the size of partition 'swap' has an unknown unit 'XB'"))
    }

    @Test func unknownOSName() throws {
        let found = try errors("name: x\nos:\n  name: debain\n  version: 12\n")
        #expect(
            found == [
                "bad.yaml:3:9: unknown os name 'debain' (known: debian, ubuntu, fedora, rhel, centos, rocky, almalinux, sl); did you mean 'debian'?"
            ])
    }

    @Test(arguments: [
        ("fedora", "1"), ("fedora", "10"), ("rocky", "7"), ("almalinux", "11"), ("centos", "4"), ("sl", "8"),
        ("rhel", "9.x"), ("ubuntu", "banana"), ("ubuntu", "21.05"), ("debian", "99"), ("debian", "banana"),
    ])
    func releasesThatDoNotExistAreErrors(os: String, version: String) throws {
        let found = try errors("name: x\nos:\n  name: \(os)\n  version: \"\(version)\"\n")
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix("bad.yaml:4:12: unknown \(os) release '\(version)'") == true, "\(found)")
    }

    @Test(arguments: [
        ("fedora", "11"), ("fedora", "45"), ("rocky", "8"), ("rhel", "5"), ("centos", "6.10"), ("sl", "7"),
        ("ubuntu", "14.04"), ("ubuntu", "jammy"), ("debian", "bookworm"), ("debian", "12"), ("almalinux", "9.4"),
    ])
    func releasesThatExistAreAccepted(os: String, version: String) throws {
        #expect(try errors("name: x\nos:\n  name: \(os)\n  version: \"\(version)\"\n").isEmpty)
    }

    @Test func newKeysAreChecked() throws {
        let found = try errors(
            minimalDescription.replacingOccurrences(of: "debian", with: "rocky").replacingOccurrences(
                of: "\"12\"", with: "\"9\"")
                    + """
                    selinux: strict
                    firewall:
                      enabled: false
                      services: [ssh]
                      ports: ["8080", "70000/tcp", "22/sctp"]
                    end: explode
                    users:
                      - name: ops
                        sudo: maybe
                    """)
        #expect(
            found == [
                "bad.yaml:5:10: selinux 'strict' must be enforcing, permissive or disabled",
                "bad.yaml:7:3: firewall has services or ports but enabled: false",
                "bad.yaml:9:11: firewall port '8080' must be a port and protocol, like 8080/tcp or 6000-6010/udp",
                "bad.yaml:9:19: firewall port '70000/tcp' must be a port and protocol, like 8080/tcp or 6000-6010/udp",
                "bad.yaml:9:32: firewall port '22/sctp' must be a port and protocol, like 8080/tcp or 6000-6010/udp",
                "bad.yaml:10:6: end 'explode' must be reboot, poweroff, halt or shutdown",
                "bad.yaml:13:11: sudo (true, false or password) must be true or false, not 'maybe'",
            ], "\(found)")
    }

    @Test func installerPartitionsCannotMergeWithListedOnes() throws {
        let found = try errors(
            minimalDescription + "appliances: [base]\nhardware:\n  partitions: installer\n", file: "a.yaml",
            extra: ["base.yaml": minimalDescription + "hardware:\n  partitions:\n    \"/\": {size: 2}\n"])
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix("a.yaml:7:15: partitions: installer cannot be merged") == true, "\(found)")
    }

    @Test func packageOptionsAreChecked() throws {
        let found = try errors(minimalDescription + "package_options: [excludedocs, nodocs, \"inst-langs=en US\"]\n")
        #expect(found.count == 2, "\(found)")
        #expect(found.first?.hasPrefix("bad.yaml:5:32: package option 'nodocs' is not one of excludedocs") == true)
        #expect(found.last?.hasPrefix("bad.yaml:5:40: package option 'inst-langs=en US'") == true, "\(found)")
    }

    @Test func missingParent() throws {
        let found = try errors(minimalDescription + "appliances:\n  - nowhere\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("bad.yaml:6:5: parent appliance 'nowhere' not found") == true, "\(found)")
    }

    @Test func cyclicParents() throws {
        let found = try errors(
            minimalDescription + "appliances: [b]\n", file: "a.yaml",
            extra: ["b.yaml": "name: b\nappliances:\n  - a\n"])
        #expect(found == ["b.yaml:3:5: inheritance cycle: a.yaml -> b.yaml -> a.yaml"])
    }

    @Test func namesWithShellMetacharacters() throws {
        let found = try errors(
            """
            name: "web; rm -rf /"
            os:
              name: debian
              version: "12"
            hostname: "$(reboot)"
            users:
              - name: "ops`id`"
            packages: ["nginx && curl"]
            services:
              enable: ["ssh|true"]
            """)
        #expect(found.count == 5, "\(found)")
        #expect(found[0].hasPrefix("bad.yaml:1:7: name 'web; rm -rf /' may hold only"))
        #expect(found[1].hasPrefix("bad.yaml:5:11: hostname '$(reboot)' is not a host name"))
        #expect(found[2].hasPrefix("bad.yaml:7:11: user name 'ops`id`'"))
        #expect(found[3].hasPrefix("bad.yaml:8:12: package name 'nginx && curl'"))
        #expect(found[4].hasPrefix("bad.yaml:10:12: service 'ssh|true'"))
    }

    @Test func everyErrorInAFileIsReported() throws {
        let found = try errors(
            "name: x\nos:\n  name: fedora\n  version: abc\nhardware:\n  cpus: 0\nconsole: \"ttyS0;x\"\n")
        #expect(found.count == 3, "\(found)")
    }

    @Test func billionLaughsEndsQuicklyWithAnError() throws {
        var text =
            "name: lol\nos: {name: debian, version: '12'}\nlol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", ")
            text += "lol\(level): &l\(level) [\(refs)]\n"
        }
        let start = ContinuousClock.now
        let found = try errors(text)
        let elapsed = ContinuousClock.now - start
        #expect(found.count == 1)
        #expect(found.first?.contains("expands to more than 100000 nodes") == true, "\(found)")
        #expect(found.first?.hasPrefix("bad.yaml:") == true)
        // Unbounded, it runs for minutes; the limit leaves room for a loaded machine.
        #expect(elapsed < .seconds(10), "took \(elapsed)")
    }

    @Test func aliasBombAsAKeyIsRefusedToo() throws {
        let found = try errors("a: &a [x, x]\n? *a\n: value\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("bad.yaml:2:3: a key must be text") == true, "\(found)")
    }

    @Test func summaryCannotSwallowTheNextLineOfAPreseed() throws {
        let found = try errors(minimalDescription + "summary: 'two lines \\'\n")
        #expect(found == ["bad.yaml:5:10: summary 'two lines \\' must be one line, not ending in a backslash"])
    }

    @Test func variableLoopsAndUndefinedVariables() throws {
        let found = try errors(
            minimalDescription + """
                variables:
                  A: "#B#"
                  B: "#A#"
                repos:
                  - name: r
                    baseurl: "http://#HOST#/debian"
                """)
        #expect(found.contains { $0.hasPrefix("bad.yaml:6:6: variable 'A' refers to itself") }, "\(found)")
        #expect(found.contains("bad.yaml:10:14: baseurl uses undefined variable '#HOST#'"), "\(found)")
    }

    @Test func duplicateKeys() throws {
        let found = try errors(minimalDescription + "name: again\n")
        #expect(found == ["bad.yaml:5:1: duplicate key 'name' (first at line 1)"])
    }

    @Test func postCommandsCannotEndTheKickstartSection() throws {
        let found = try errors(minimalDescription + "post:\n  base:\n    - |\n      echo a\n      %end\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("bad.yaml:7:7: a post command cannot hold the line '%end'") == true, "\(found)")
    }
}
