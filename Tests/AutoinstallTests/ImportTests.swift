import Foundation
import KilnTestSupport
import Testing

@testable import Appliance
@testable import Autoinstall

@Suite struct ImportTests {
    /// description -> kickstart -> description -> kickstart gives the same kickstart twice.
    private func roundTrip(_ appliance: Appliance) throws -> (String, String, String) {
        let first = try KickstartRenderer().render(appliance)
        let imported = try KickstartImporter().read(first, name: "imported").appliance
        let yaml = ApplianceWriter.yaml(imported)
        let dir = NSTemporaryDirectory() + "kiln-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try yaml.write(toFile: dir + "/imported.yaml", atomically: true, encoding: .utf8)
        let reloaded = try ApplianceLoader().load(dir + "/imported.yaml")
        return (first, try KickstartRenderer().render(reloaded), yaml)
    }

    @Test(arguments: ["fedora-server.yaml", "rocky-9.yaml", "boxgrinder-jeos.appl", "scientific-6.appl"])
    func roundTripOfTheExamplesGivesTheSameKickstart(name: String) throws {
        let (first, second, _) = try roundTrip(try ApplianceLoader().load("\(packageRoot)/Appliances/\(name)"))
        #expect(first == second)
    }

    @Test func roundTripKeepsEverythingButEmbeddedFiles() throws {
        var appliance = try loadFixture("full-rocky.yaml")
        appliance.files = []
        let (first, second, yaml) = try roundTrip(appliance)
        #expect(first == second)
        #expect(!yaml.contains("ops-password") && yaml.contains("password_hash"))
    }

    @Test func readsHandWrittenKickstarts() throws {
        let kickstart = """
            # a hand-written kickstart
            lang en_US.UTF-8
            keyboard us
            timezone America/New_York --utc
            rootpw --plaintext hunter22
            url --url=http://mirror.example.org/almalinux/9/BaseOS/x86_64/os/
            repo --name="extra" --baseurl=http://mirror.example.org/extra/ --cost 50
            network --bootproto=dhcp --device=eth0
            bootloader --append="console=ttyS0,9600 crashkernel=auto"
            autopart
            part /data --size 2048 --fstype xfs --grow
            %pre
            echo ignored
            %end
            %packages --ignoremissing
            @core
            vim-enhanced
            -iwl*-firmware
            %end
            %post
            echo "first"
            systemctl enable sshd
            %end
            xconfig --startxonboot
            """
        let result = try KickstartImporter().read(kickstart, name: "handmade")
        let appliance = result.appliance
        #expect(appliance.name == "handmade")
        #expect(appliance.os.name == .almalinux && appliance.os.version == "9")
        #expect(appliance.os.timezone == "America/New_York")
        #expect(appliance.os.passwordHash?.hasPrefix("$6$") == true)
        #expect(PasswordHash.crypt("hunter22", setting: appliance.os.passwordHash ?? "") == appliance.os.passwordHash)
        #expect(!appliance.defaultRepos)
        #expect(appliance.repos.map(\.name) == ["install", "extra"])
        #expect(appliance.repos[1].cost == 50 && appliance.repos[1].ephemeral)
        #expect(appliance.network == [NetworkInterface(interface: "eth0")])
        #expect(appliance.console == SerialConsole(device: "ttyS0", speed: 9600))
        #expect(appliance.kernelArgs == "crashkernel=auto")
        #expect(
            appliance.hardware.partitions == [
                Partition(mountPoint: "/data", size: Size(mebibytes: 2048), type: .xfs, grow: true)
            ])
        #expect(appliance.packages == ["@core", "vim-enhanced", "-iwl*-firmware"])
        #expect(appliance.post.base == ["echo \"first\"\nsystemctl enable sshd"])
        #expect(result.warnings.contains { $0.contains("%pre") })
        #expect(result.warnings.contains { $0.contains("xconfig") })
    }

    private func importFixture(_ name: String) throws -> KickstartImporter.Result {
        let path = "\(fixtures)/kickstarts/\(name)"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try KickstartImporter().read(text, name: "imported", directory: "\(fixtures)/kickstarts")
    }

    /// Loads what the importer made, as `kiln import-kickstart` checks it before writing.
    private func validated(_ appliance: Appliance) throws -> Appliance {
        let dir = NSTemporaryDirectory() + "kiln-import-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ApplianceWriter.yaml(appliance).write(toFile: dir + "/imported.yaml", atomically: true, encoding: .utf8)
        return try ApplianceLoader().load(dir + "/imported.yaml")
    }

    @Test func classicSyntaxIncludesAndEverythingLeftOutIsNamed() throws {
        let result = try importFixture("centos5-classic.ks")
        let appliance = try validated(result.appliance)
        #expect(appliance.os.name == .centos && appliance.os.version == "5")
        #expect(appliance.packages == ["@core", "-@dialup", "httpd", "vim-enhanced"])
        #expect(appliance.post.base == ["chkconfig httpd on\necho ready > /etc/motd"])
        #expect(appliance.selinux == .permissive)
        #expect(appliance.firewall == Firewall(enabled: true, services: ["http"], ports: ["22/tcp"]))
        #expect(appliance.end == .reboot)
        #expect(appliance.repos.map(\.name) == ["install", "epel"])
        #expect(appliance.repos[1].baseurl == "http://mirror.example.org/epel/5/x86_64")
        // The partitions come from the included file; the second '/' replaces the first.
        #expect(
            appliance.hardware.partitions.map { "\($0.mountPoint) \($0.size.mebibytes) \($0.type)" } == [
                "/boot 200 ext3", "swap 1024 swap", "/ 8192 ext3",
            ])
        let warnings = result.warnings.joined(separator: "\n")
        for expected in [
            "line 7: network --noipv6 is not imported",
            "line 10: 'authconfig' is not imported",
            "line 13: bootloader --driveorder is not imported",
            "line 15: %include /nonexistent/extra.ks is not followed",
            "line 17: repo 'local' has no --baseurl or --mirrorlist; skipped",
            "line 20: %packages --nobase is not imported",
            "line 5 of partitions.inc: partition '/' was given before (line 4 of partitions.inc)",
            "line 7 of partitions.inc: partition '/data' on an existing partition (--onpart) is not imported",
            "the OS is guessed from the URL http://mirror.example.org/centos/5.11/os/$basearch: centos 5",
        ] {
            #expect(warnings.contains(expected), "missing warning: \(expected)\n\(warnings)")
        }
        #expect(!warnings.contains("no partitioning"))
    }

    @Test(.requires(Judge.ksvalidator != nil, "pykickstart's ksvalidator (scripts/install-deps.sh)"))
    func importedKickstartsComeBackValidForTheirRelease() throws {
        for name in ["centos5-classic.ks", "fedora-minimal.ks"] {
            let appliance = try validated(try importFixture(name).appliance)
            let text = try KickstartRenderer().render(appliance)
            let problems = try Judge.kickstartProblems(text, os: appliance.os)
            #expect(problems == nil, "\(name): \(problems ?? "")")
            // And the round trip from there is stable.
            let (first, second, _) = try roundTrip(appliance)
            #expect(first == second, "\(name)")
        }
    }

    @Test func lockedRootPlaceholdersMissingPartitioningAndGuessesAreWarned() throws {
        let result = try importFixture("fedora-minimal.ks")
        let appliance = try validated(result.appliance)
        #expect(appliance.os.passwordHash == nil, "rootpw --lock with a placeholder is a locked root")
        #expect(appliance.packages == ["@^minimal-environment", "-@standard"])
        #expect(appliance.packageOptions == PackageOptions(excludeDocs: true, excludeWeakDeps: true))
        // No partitioning in, none out: Anaconda asks, as it would have.
        #expect(appliance.hardware.partitionsByInstaller)
        let kickstart = try KickstartRenderer().render(appliance)
        #expect(!kickstart.contains("zerombr") && !kickstart.contains("clearpart") && !kickstart.contains("\npart "))
        #expect(ApplianceWriter.yaml(appliance).contains("  partitions: installer\n"))
        #expect(appliance.repos.first?.mirrorlist?.contains("repo=fedora-40&arch=x86_64") == true)
        let warnings = result.warnings.joined(separator: "\n")
        for expected in [
            "line 7: user --uid is not imported",
            "no url, repo or comment names the OS; fedora 40 assumed",
            "the kickstart has no partitioning",
            "the kickstart has no reboot, poweroff or halt",
        ] {
            #expect(warnings.contains(expected), "missing warning: \(expected)\n\(warnings)")
        }
    }

    @Test func theVersionHeaderNamesTheReleaseWhenNoURLDoes() throws {
        let result = try KickstartImporter().read("#version=RHEL7\n# CentOS 6 leftovers\nautopart\n", name: "x")
        #expect(result.appliance.os.name == .rhel && result.appliance.os.version == "7")
        #expect(result.warnings.contains("the OS is guessed from a comment: rhel 7"))
    }

    @Test func windowsLineEndingsAreLines() throws {
        let text = "lang de_DE.UTF-8\r\nselinux --permissive\r\n%packages\r\n@core\r\n%end\r\n"
        let appliance = try KickstartImporter().read(text, name: "x").appliance
        #expect(appliance.os.locale == "de_DE.UTF-8" && appliance.selinux == .permissive)
        #expect(appliance.packages == ["@core"])
    }

    @Test func sectionsWithoutEndStopAtTheNextSection() throws {
        let text = "%packages\n@core\n%post\necho one\n%pre\necho never\n"
        let result = try KickstartImporter().read(text, name: "x")
        #expect(result.appliance.packages == ["@core"])
        #expect(result.appliance.post.base == ["echo one"])
        #expect(result.warnings.contains { $0.hasPrefix("line 5: section %pre") })
    }

    /// pykickstart reads the same from the kickstart kiln regenerates as from the one imported,
    /// field by field, except where a warning names the difference.
    @Test(
        .requires(Judge.python != nil, "pykickstart in .tools/venv (scripts/install-deps.sh)"),
        arguments: [("rocky8-handwritten.ks", "RHEL8"), ("fedora-minimal.ks", "F40")])
    func pykickstartReadsTheSameExceptWhereAWarningSaysSo(name: String, version: String) throws {
        let original = "\(fixtures)/kickstarts/\(name)"
        let result = try importFixture(name)
        let appliance = try validated(result.appliance)
        let regenerated = try Judge.temporaryFile(try KickstartRenderer().render(appliance), suffix: ".ks")
        defer { try? FileManager.default.removeItem(atPath: regenerated) }
        var before = try Judge.kickstartFacts(original, version: version)
        var after = try Judge.kickstartFacts(regenerated, version: version)
        // yum's variables as the release kiln installs has them.
        func expand(_ value: Any) -> Any {
            if let text = value as? String {
                return text.replacingOccurrences(of: "$basearch", with: "x86_64")
                    .replacingOccurrences(of: "$releasever", with: appliance.os.version)
            }
            if let list = value as? [Any] { return list.map(expand) }
            return value
        }
        before = before.mapValues(expand)
        // Anaconda knows swap by its mount point; kiln writes its type too.
        before["partitions"] = (before["partitions"] as? [[Any]] ?? []).map { part in
            (part.first as? String) == "swap" ? [part[0], part[1], "swap", part[3]] : part
        }
        // The install source kiln also lists as a repo (a description keeps it as one).
        let url = after["url"] as? String ?? ""
        after["repos"] = (after["repos"] as? [[Any]] ?? []).filter { ($0[1] as? String) != url }
        // kiln runs each post command in its own shell: the text is inside, wrapped.
        let afterPost = (after["post"] as? [String] ?? []).joined(separator: "\n")
        let postKept = (before["post"] as? [String] ?? []).allSatisfy { afterPost.contains($0) }
        before["post"] = nil
        after["post"] = nil
        let warnings = result.warnings.joined(separator: "\n")
        let named: [String: [String]] = [
            "packages": ["%packages"], "groups": ["%packages"], "environment": ["%packages"],
            "exclusions": ["%packages"], "users": ["user"], "services": ["services"], "firewall": ["firewall"],
            "selinux": ["selinux"], "partitions": ["part", "partitioning"], "repos": ["repo"], "url": ["url"],
            "end": ["reboot, poweroff or halt"],
        ]
        for (field, keywords) in named {
            let same = NSDictionary(dictionary: ["v": before[field] ?? NSNull()])
                .isEqual(to: ["v": after[field] ?? NSNull()])
            let warned = keywords.contains { warnings.contains($0) }
            #expect(
                same || warned,
                "\(name): \(field) differs without a warning: \(before[field] ?? "-") -> \(after[field] ?? "-")")
        }
        #expect(postKept || warnings.contains("%post"), "\(name): %post differs without a warning")
    }

    @Test func autopartGivesTheDefaultLayout() throws {
        let appliance = try KickstartImporter().read("autopart\n", name: "x").appliance
        #expect(appliance.hardware.partitions == [Partition.defaultRoot])
    }

    @Test func unterminatedQuotesAreAnError() {
        #expect(throws: AutoinstallError.self) { _ = try KickstartImporter().read("rootpw \"abc\n", name: "x") }
    }
}
