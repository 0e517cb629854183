import Foundation
import KilnTestSupport
import Packages
import Testing

@testable import Appliance
@testable import Autoinstall

/// Golden files for both renderers. Set KILN_UPDATE_GOLDEN=1 to rewrite them after a deliberate change.
@Suite struct GoldenTests {
    private func compare(_ text: String, golden name: String) throws {
        let path = "\(fixtures)/golden/\(name)"
        if ProcessInfo.processInfo.environment["KILN_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: "\(fixtures)/golden", withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == expected, "\(name) differs from its golden file; rerun with KILN_UPDATE_GOLDEN=1 if intended")
    }

    @Test func kickstartGolden() throws {
        let text = try KickstartRenderer().render(try loadFixture("full-rocky.yaml"))
        try compare(text, golden: "full-rocky.ks")
    }

    @Test func preseedGolden() throws {
        let renderer = PreseedRenderer(hostSources: exampleHostSources)
        try compare(try renderer.render(try loadFixture("full-debian.yaml")), golden: "full-debian.preseed")
        try compare(try renderer.render(try loadFixture("encrypted-ubuntu.yaml")), golden: "encrypted-ubuntu.preseed")
    }
}

@Suite struct KickstartTests {
    @Test(.requires(Judge.ksvalidator != nil, "pykickstart's ksvalidator (scripts/install-deps.sh)"))
    func ksvalidatorAcceptsEveryKickstart() throws {
        var appliances = [try loadFixture("full-rocky.yaml")]
        for name in ["fedora-server.yaml", "rocky-9.yaml", "boxgrinder-jeos.appl", "scientific-6.appl"] {
            appliances.append(try ApplianceLoader().load("\(packageRoot)/Appliances/\(name)"))
        }
        // The same descriptions for every release kiln maps to a syntax version; one ksvalidator
        // run per version.
        var byVersion: [String: [String]] = [:]
        for appliance in appliances {
            // Each at its own release first (scientific-6 is RHEL6).
            byVersion[KickstartRenderer.syntaxVersion(for: appliance.os), default: []].append(
                try KickstartRenderer().render(appliance))
            for (os, version) in [
                (OSName.fedora, "40"), (.fedora, "42"), (.almalinux, "8"), (.rocky, "9"), (.rhel, "10"),
            ] {
                var copy = appliance
                copy.os.name = os
                copy.os.version = version
                let syntax = KickstartRenderer.syntaxVersion(for: copy.os)
                byVersion[syntax, default: []].append(try KickstartRenderer().render(copy))
            }
        }
        for action in EndAction.allCases {
            byVersion["RHEL9", default: []].append(try KickstartRenderer(endAction: action).render(appliances[0]))
        }
        #expect(byVersion.keys.sorted() == ["F40", "F42", "RHEL10", "RHEL6", "RHEL8", "RHEL9"])
        for (version, kickstarts) in byVersion.sorted(by: { $0.key < $1.key }) {
            let problems = try Judge.kickstartProblems(kickstarts, version: version)
            #expect(problems == nil, "\(problems ?? "")")
        }
    }

    /// Every release from RHEL 5 and Fedora 11 on gets its own syntax, judged by ksvalidator at
    /// that release's version: the old ones lack sshkey, network --activate, repo --install,
    /// clearpart --disklabel, keyboard --vckeymap, bare rootpw --lock, firewall --service.
    @Test(.requires(Judge.ksvalidator != nil, "pykickstart's ksvalidator (scripts/install-deps.sh)"))
    func everyReleaseGetsItsOwnSyntax() throws {
        var withoutRoot = try loadFixture("full-rocky.yaml")
        withoutRoot.os.passwordHash = nil
        let appliances = [try loadFixture("full-rocky.yaml"), withoutRoot]
        let releases: [(OSName, String, String)] = [
            (.rhel, "5", "RHEL5"), (.centos, "5.11", "RHEL5"), (.sl, "5", "RHEL5"), (.rhel, "6", "RHEL6"),
            (.centos, "6", "RHEL6"), (.sl, "6", "RHEL6"), (.rhel, "7", "RHEL7"), (.centos, "7", "RHEL7"),
            (.sl, "7", "RHEL7"), (.rocky, "8", "RHEL8"), (.almalinux, "9", "RHEL9"), (.centos, "10", "RHEL10"),
            (.fedora, "11", "F11"), (.fedora, "14", "F14"), (.fedora, "16", "F16"), (.fedora, "18", "F18"),
            (.fedora, "20", "F20"), (.fedora, "21", "F21"), (.fedora, "22", "F22"), (.fedora, "30", "F30"),
            (.fedora, "45", "F45"),
        ]
        var byVersion: [String: [String]] = [:]
        for (os, version, syntax) in releases {
            for appliance in appliances {
                var copy = appliance
                copy.os.name = os
                copy.os.version = version
                #expect(KickstartRenderer.syntaxVersion(for: copy.os) == syntax)
                let (text, warnings) = try KickstartRenderer().renderWithWarnings(copy)
                // Nothing is lost silently: what a release cannot say is named.
                // RHEL 5 has no repo costs, older releases lack some %packages options; the newest say it all.
                if ["RHEL9", "RHEL10", "F45"].contains(syntax) { #expect(warnings.isEmpty, "\(syntax): \(warnings)") }
                #expect((syntax == "RHEL5") == warnings.contains { $0.contains("has no repo costs; cost left out") })
                #expect(
                    warnings.allSatisfy { $0.contains("has no repo costs") || $0.hasPrefix("package option ") },
                    "\(warnings)")
                byVersion[syntax, default: []].append(text)
            }
        }
        for (version, kickstarts) in byVersion.sorted(by: { $0.key < $1.key }) {
            let problems = try Judge.kickstartProblems(kickstarts, version: version)
            #expect(problems == nil, "\(problems ?? "")")
        }
        // What the old syntax cannot say in a command is still done, in %post.
        var old = appliances[0]
        old.os.name = .centos
        old.os.version = "6"
        let text = try KickstartRenderer().render(old)
        #expect(!text.contains("\nsshkey ") && text.contains("# kiln: sshkey ops"))
        #expect(text.contains("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiln0test0key"))
        #expect(
            text.contains("printf '%s\\n' '[extras]' name=extras baseurl=http://mirror.example.org/rocky/9/extras/"))
        #expect(text.contains("keyboard de\n"))
    }

    /// Runs shell text in a fresh folder with OUT pointing at it; returns the status, stderr and folder.
    private func runShell(_ script: String) throws -> (Int32, String, String) {
        let dir = NSTemporaryDirectory() + "kiln-post-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.environment = ["OUT": dir, "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), dir)
    }

    private let postCommands = [
        "cd /", "pwd > $OUT/a", "echo multi > $OUT/m\nfalse\necho the-last-command-decides", "chown nobody:nobody /",
        "echo never > $OUT/b",
    ]

    /// As BoxGrinder ran them: no cd carries over, and the first failing command stops the rest.
    @Test func kickstartPostCommandsRunEachInItsOwnShellAndStopAtTheFirstFailure() throws {
        var appliance = Appliance(name: "post", os: OperatingSystem(name: .rocky, version: "9"))
        appliance.post.base = postCommands
        let text = try KickstartRenderer().render(appliance)
        let start = try #require(text.range(of: "%post --erroronfail\n"))
        let end = try #require(text.range(of: "\n%end", range: start.upperBound..<text.endIndex))
        let (status, errors, dir) = try runShell(String(text[start.upperBound..<end.lowerBound]))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(status == 1)
        #expect(errors.contains("kiln: post command 4 failed: chown nobody:nobody /"), "\(errors)")
        let pwd = try String(contentsOfFile: dir + "/a", encoding: .utf8)
        #expect(pwd != "/\n", "the cd of the command before did not carry over")
        #expect(FileManager.default.fileExists(atPath: dir + "/m"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/b"), "nothing runs after the failure")
        // And it reads back as the same commands.
        let imported = try KickstartImporter().read(text, name: "post").appliance
        #expect(imported.post.base == postCommands)
    }

    @Test func preseedPostCommandsRunEachInItsOwnShellAndStopAtTheFirstFailure() throws {
        var appliance = Appliance(name: "post", os: OperatingSystem(name: .debian, version: "12"))
        appliance.post.base = postCommands.filter { !$0.contains("\n") }
        let text = try PreseedRenderer(hostSources: exampleHostSources).render(appliance)
        let start = try #require(text.range(of: "d-i preseed/late_command string \\\n"))
        let end = try #require(text.range(of: "\n\n", range: start.upperBound..<text.endIndex))
        // debconf joins a line ending in a backslash to the next.
        let value = text[start.upperBound..<end.lowerBound].replacingOccurrences(of: "\\\n", with: "")
        let (status, errors, dir) = try runShell("in_target() { \"$@\"; }; alias in-target=in_target\n" + value)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(status == 1)
        #expect(errors.contains("kiln: post command 3 failed: chown nobody:nobody /"), "\(errors)")
        #expect(try String(contentsOfFile: dir + "/a", encoding: .utf8) != "/\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b"))
    }

    @Test func btrfsOnRHEL8AndLaterIsAClearError() throws {
        var appliance = try loadFixture("full-rocky.yaml")
        appliance.hardware.partitions[0].type = .btrfs
        #expect(throws: AutoinstallError.self) { _ = try KickstartRenderer().render(appliance) }
        appliance.os.name = .fedora
        appliance.os.version = "40"
        #expect(throws: Never.self) { _ = try KickstartRenderer().render(appliance) }
    }

    /// An arm64 machine's kickstart: the repos at `#BASE_ARCH#` are aarch64's, the disk has an ESP and
    /// no BIOS boot partition (UEFI only), the console is the PL011 UART; ksvalidator accepts it, and
    /// imported back it is an aarch64 description. A release with no aarch64 installer is refused.
    @Test(.requires(Judge.ksvalidator != nil, "pykickstart's ksvalidator (scripts/install-deps.sh)"))
    func anArm64MachineGetsAnArm64Kickstart() throws {
        let description = try Judge.temporaryFile(
            """
            name: rocky-arm64
            os: {name: rocky, version: "9", password: kiln}
            hardware:
              arch: aarch64
              partitions: {"/": {size: 6}}
            repos:
              - name: baseos
                baseurl: "http://mirror.example.org/rocky/#OS_VERSION#/BaseOS/#BASE_ARCH#/os/"
            packages: [openssh-server]

            """, suffix: ".yaml")
        defer { try? FileManager.default.removeItem(atPath: description) }
        var appliance = try ApplianceLoader().load(description)
        let text = try KickstartRenderer().render(appliance)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("# kiln: arch=aarch64"))
        let repo = "repo --name=baseos --baseurl=http://mirror.example.org/rocky/9/BaseOS/aarch64/os/ --install"
        #expect(lines.contains(repo))
        #expect(lines.contains("part /boot/efi --fstype=efi --size=600"))
        #expect(!lines.contains { $0.hasPrefix("part biosboot") })
        #expect(lines.contains { $0.hasPrefix("bootloader ") && $0.contains("console=ttyAMA0,115200") })
        let problems = try Judge.kickstartProblems(text, os: appliance.os)
        #expect(problems == nil, "\(problems ?? "")")

        let imported = try KickstartImporter().read(text, name: "imported").appliance
        #expect(imported.hardware.arch == .aarch64 && imported.hardware.firmware == .uefi)
        // A hand-written one says arm64 only in its URLs.
        let handWritten = text.split(separator: "\n").filter { !$0.hasPrefix("# kiln:") }.joined(separator: "\n")
        let guessed = try KickstartImporter().read(handWritten, name: "handmade")
        #expect(guessed.appliance.hardware.arch == .aarch64)
        #expect(guessed.warnings.contains { $0.contains("hardware.arch: aarch64") }, "\(guessed.warnings)")

        appliance.os.name = .centos
        appliance.os.version = "6"
        #expect(throws: AutoinstallError.self) { try KickstartRenderer().render(appliance) }
    }

    @Test func theNewKeysReachTheKickstart() throws {
        let text = try KickstartRenderer().render(try loadFixture("full-rocky.yaml"))
        #expect(text.contains("\nselinux --permissive\n"))
        #expect(text.contains("\nfirewall --enabled --service=ssh,http,https --port=8080:tcp --port=6000-6010:udp\n"))
        #expect(text.contains("\npoweroff\n") && !text.contains("\nreboot\n"))
        #expect(text.contains("\n%packages --excludedocs --nocore --exclude-weakdeps --inst-langs=de_DE\n"))
        #expect(text.contains("'deploy ALL=(ALL) ALL' > /etc/sudoers.d/deploy\n"))
        #expect(text.contains("'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops\n"))
    }

    @Test func boxGrinderFilesGetPermissiveSELinuxAndNoFirewall() throws {
        let appliance = try ApplianceLoader().load("\(packageRoot)/Appliances/boxgrinder-jeos.appl")
        let text = try KickstartRenderer().render(appliance)
        #expect(text.contains("\nselinux --permissive\n") && text.contains("\nfirewall --disabled\n"))
        let yaml = try KickstartRenderer().render(try ApplianceLoader().load("\(packageRoot)/Appliances/rocky-9.yaml"))
        #expect(yaml.contains("\nselinux --enforcing\n") && yaml.contains("\nfirewall --enabled --service=ssh\n"))
    }

    @Test func everythingTheDescriptionSaysReachesTheKickstart() throws {
        let appliance = try loadFixture("full-rocky.yaml")
        let lines = try KickstartRenderer().render(appliance).split(separator: "\n").map(String.init)
        let expected = [
            "lang de_DE.UTF-8", "keyboard --vckeymap=de --xlayouts=de", "timezone Europe/Berlin --utc",
            "rootpw --iscrypted \(appliance.os.passwordHash ?? "?")",
            "user --name=ops --groups=wheel,adm --iscrypted --password=\(appliance.users[0].passwordHash ?? "?")",
            "user --name=deploy",
            "sshkey --username=ops \"\(appliance.users[0].sshKeys[0])\"",
            "printf '%s\\n' '\(appliance.users[0].sshKeys[1])' >> /home/ops/.ssh/authorized_keys",
            "network --bootproto=dhcp --device=ens3 --activate --onboot=on",
            "network --bootproto=static --device=ens4 --ip=192.0.2.17 --netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.53,2001:db8::53 --activate --onboot=on",
            "network --hostname=lab-07.example.org",
            "bootloader --location=mbr --timeout=1 --append=\"console=tty0 console=ttyS1,38400 quiet net.ifnames=0\"",
            "zerombr", "part /boot/efi --fstype=efi --size=600",
            "part / --size=6144 --fstype=xfs --fsoptions=\"noatime,nodev\"",
            "part /srv --size=2048 --fstype=ext4 --grow --encrypted --passphrase=\"a passphrase with spaces\"",
            "url --url=http://mirror.example.org/rocky/9/BaseOS/x86_64/os/",
            "services --enabled=sshd,chronyd --disabled=kdump", "-plymouth", "poweroff",
            "echo 'it''s done' > /root/done; touch /root/$(hostname)",
            "  cat /etc/motd >> /root/done",
        ]
        for line in expected { #expect(lines.contains(line), "missing: \(line)") }
        #expect(!lines.contains { $0.hasPrefix("part biosboot") }, "uefi firmware needs no BIOS boot partition")
        #expect(!lines.joined().contains("root-password"), "no password text in the output")
        // Repos by cost; the ephemeral one is not installed into the target.
        let repos = lines.filter { $0.hasPrefix("repo ") }
        #expect(
            repos == [
                "repo --name=baseos --baseurl=http://mirror.example.org/rocky/9/BaseOS/x86_64/os/ --cost=10",
                "repo --name=appstream --mirrorlist=http://mirror.example.org/mirrorlist?repo=AppStream-9&arch=x86_64 --cost=20 --install",
                "repo --name=extras --baseurl=http://mirror.example.org/rocky/9/extras/x86_64/os/ --install",
            ])
    }

    @Test func embeddedFilesDecodeToTheirContents() throws {
        let text = try KickstartRenderer().render(try loadFixture("full-rocky.yaml"))
        let lines = text.split(separator: "\n").map(String.init)
        let start = try #require(lines.firstIndex(of: "base64 -d > /etc/motd <<'KILN_FILE_END'"))
        let end = try #require(lines[start...].firstIndex(of: "KILN_FILE_END"))
        let decoded = Data(base64Encoded: lines[(start + 1)..<end].joined())
        #expect(decoded == FileManager.default.contents(atPath: "\(fixtures)/motd"))
        #expect(lines.contains("chmod 0755 /usr/local/bin/hello.sh"))
        #expect(lines.contains("curl -fsSL -o /usr/local/bin/check.sh http://files.example.org/tools/check.sh"))
    }

    /// Files an installer cannot take in its answer file are a clear error, never cut short.
    @Test func filesTooLargeToEmbedAreAClearError() throws {
        var appliance = Appliance(name: "big", os: OperatingSystem(name: .rocky, version: "9"))
        appliance.files = [FileGroup(target: "/srv", sources: [.local("/big.bin", destination: "big.bin")])]
        let big = FileReader { _ in (Data(count: FileReader.maxSize + 1), false) }
        #expect {
            _ = try KickstartRenderer(readFile: big).render(appliance)
        } throws: { error in
            "\(error)".contains("/big.bin is \(FileReader.maxSize + 1) bytes; install answers embed files up to")
        }
        // Each file within the limit, but too many of them together.
        appliance.files[0].sources = (0..<9).map { .local("/part\($0)", destination: "part\($0)") }
        let parts = FileReader { _ in (Data(count: FileReader.maxSize), false) }
        #expect {
            _ = try KickstartRenderer(readFile: parts).render(appliance)
        } throws: { error in
            "\(error)".hasPrefix("files embed more than \(FileReader.maxTotalSize) bytes in all (at /part8)")
        }
        appliance.os = OperatingSystem(name: .debian, version: "12")
        #expect(throws: AutoinstallError.self) {
            _ = try PreseedRenderer(readFile: parts, hostSources: exampleHostSources).render(appliance)
        }
    }

    /// Ubuntu gets Ubuntu's archive and components, never the Debian host's mirror; numeric
    /// releases and code names both work.
    @Test(arguments: ["14.04", "22.04", "jammy", "noble"])
    func ubuntuUsesItsOwnArchive(version: String) throws {
        var appliance = try loadFixture("encrypted-ubuntu.yaml")
        appliance.os.version = version
        let text = try PreseedRenderer(hostSources: exampleHostSources).render(appliance)
        let codename = try #require(appliance.os.codename)
        #expect(text.contains("d-i mirror/http/hostname string archive.example.org\n"))
        #expect(text.contains("d-i mirror/suite string \(codename)\n"))
        #expect(text.contains("d-i apt-setup/universe boolean true\n"))
        #expect(text.contains("d-i apt-setup/multiverse boolean false\n"))
        #expect(!text.contains("non-free"))
        appliance.repos = []
        #expect {
            _ = try PreseedRenderer(hostSources: exampleHostSources).render(appliance)
        } throws: { error in
            "\(error)".contains("the host's apt sources have no \(codename) suite: add a repo")
        }
        let ubuntuHost = [
            ArchiveSource(uri: "http://archive.example.org/ubuntu", suite: codename, components: ["main"])
        ]
        let fromHost = try PreseedRenderer(hostSources: ubuntuHost).render(appliance)
        #expect(fromHost.contains("d-i apt-setup/restricted boolean false\n"))
    }

    @Test func debianDescriptionsAreRefused() throws {
        let appliance = try ApplianceLoader().load("\(packageRoot)/Appliances/debian-minimal.yaml")
        #expect(throws: AutoinstallError.self) { _ = try KickstartRenderer().render(appliance) }
    }
}

@Suite struct PreseedTests {
    @Test(.requires(Judge.debconf != nil, "debconf-set-selections (package debconf)"))
    func debconfAcceptsEveryPreseed() throws {
        var appliances = [try loadFixture("full-debian.yaml"), try loadFixture("encrypted-ubuntu.yaml")]
        for name in ["debian-minimal.yaml", "debian12-minimal.yaml", "debian-web.yaml"] {
            appliances.append(try ApplianceLoader().load("\(packageRoot)/Appliances/\(name)"))
        }
        // Ubuntu by number and by code name, old and new (one debconf at a time: it locks its database).
        for version in ["14.04", "22.04", "jammy"] {
            var ubuntu = appliances[1]
            ubuntu.os.version = version
            appliances.append(ubuntu)
        }
        for appliance in appliances {
            for action in EndAction.allCases {
                let text = try PreseedRenderer(endAction: action, hostSources: exampleHostSources).render(appliance)
                let problems = try Judge.preseedProblems(text)
                #expect(problems == nil, "\(appliance.name): \(problems ?? "")")
            }
        }
    }

    @Test func mirrorComesFromTheHostsAptSourcesWhenTheDescriptionHasNoRepos() throws {
        let appliance = try ApplianceLoader().load("\(packageRoot)/Appliances/debian-minimal.yaml")
        let lines = try PreseedRenderer(hostSources: exampleHostSources).render(appliance).split(separator: "\n")
        #expect(lines.contains("d-i mirror/http/hostname string deb.example.org"))
        #expect(lines.contains("d-i mirror/http/directory string /debian"))
        #expect(lines.contains("d-i mirror/suite string trixie"))
        #expect(lines.contains("d-i apt-setup/security_host string security.example.org"))
        #expect(lines.contains("d-i apt-setup/security_path string /debian-security"))
        #expect(throws: AutoinstallError.self) { _ = try PreseedRenderer(hostSources: []).render(appliance) }
    }

    @Test func everythingTheDescriptionSaysReachesThePreseed() throws {
        let appliance = try loadFixture("full-debian.yaml")
        let text = try PreseedRenderer(hostSources: exampleHostSources).render(appliance)
        let lines = text.split(separator: "\n").map(String.init)
        let expected = [
            "d-i debian-installer/locale string en_GB.UTF-8", "d-i keyboard-configuration/xkb-keymap select gb",
            "d-i netcfg/choose_interface select ens3", "d-i netcfg/get_ipaddress string 192.0.2.20",
            "d-i netcfg/get_netmask string 255.255.255.0", "d-i netcfg/get_gateway string 192.0.2.1",
            "d-i netcfg/get_nameservers string 192.0.2.53", "d-i netcfg/get_hostname string db-01",
            "d-i netcfg/get_domain string lab.example.org", "d-i mirror/http/hostname string deb.example.org",
            "d-i apt-setup/non-free-firmware boolean true", "d-i time/zone string Europe/London",
            "d-i passwd/root-password-crypted password \(appliance.os.passwordHash ?? "?")",
            "d-i apt-setup/local0/repository string https://tools.example.org/apt stable main",
            "d-i apt-setup/local0/key string https://tools.example.org/apt/key.asc",
            "d-i pkgsel/include string openssh-server curl sudo",
            "    in-target sh -c 'echo '\\''it'\\'''\\''s done'\\'' > /root/done' "
                + "|| { echo 'kiln: post command 1 failed: echo '\\''it'\\'''\\''s done'\\'' > /root/done' >&2; "
                + "exit 1; }; \\",
            "    in-target systemctl disable apt-daily.timer; \\",
        ]
        for line in expected { #expect(lines.contains(line), "missing: \(line)") }
        #expect(
            text.contains(
                "4096 4096 4096 ext4 $primary{ } method{ format } format{ } use_filesystem{ } filesystem{ ext4 } mountpoint{ / } options/noatime{ noatime } ."
            ))
        #expect(text.contains("1024 1024 1024 linux-swap $primary{ } method{ swap } format{ } ."))
        #expect(
            text.contains(
                "2048 2048 2048 xfs $primary{ } method{ format } format{ } use_filesystem{ } filesystem{ xfs } mountpoint{ /var } ."
            ))
        #expect(text.contains("1024 1024 -1 ext4"), "the growing partition has no maximum")
        #expect(text.contains("method{ biosgrub }") && !text.contains("method{ efi }"), "bios firmware: no ESP")
        #expect(!text.contains("add-kernel-opts"), "console: false and no kernel_args")
        #expect(text.contains("printf '%s\\n' 'auto ens5' 'iface ens5 inet static' '    address 198.51.100.4/26'"))
        #expect(!text.contains("ops-password"))
    }

    /// The late command that drops an ephemeral archive, run by the real sed on a sources.list
    /// like the one debian-installer writes.
    @Test func ephemeralReposLeaveTheInstalledSourcesList() throws {
        let text = try PreseedRenderer(hostSources: exampleHostSources).render(try loadFixture("full-debian.yaml"))
        let line = try #require(text.split(separator: "\n").first { $0.contains("in-target sed -i") })
        let words = try KickstartImporter.split(
            String(line.trimmingCharacters(in: .whitespaces).dropLast(3)), line: "line 1")
        #expect(words.count == 5 && words[0] == "in-target" && words[4] == "/etc/apt/sources.list")
        let file = try Judge.temporaryFile(
            """
            deb http://deb.example.org/debian/ bookworm main non-free-firmware
            deb https://tools.example.org/apt/ stable main
            deb https://tools.example.org/apt-other/ stable main

            """, suffix: ".list")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (status, output) = try Judge.run("/bin/sed", ["-i", words[3], file])
        #expect(status == 0, "\(output)")
        #expect(
            try String(contentsOfFile: file, encoding: .utf8) == """
                deb http://deb.example.org/debian/ bookworm main non-free-firmware
                deb https://tools.example.org/apt-other/ stable main

                """)
    }

    @Test func rpmDescriptionsAreRefused() throws {
        let appliance = try loadFixture("full-rocky.yaml")
        #expect(throws: AutoinstallError.self) {
            _ = try PreseedRenderer(hostSources: exampleHostSources).render(appliance)
        }
    }
}
