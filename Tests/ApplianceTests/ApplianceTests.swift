import Foundation
import Testing

@testable import Appliance

@Suite struct LoadingTests {
    @Test func everyExampleInAppliancesLoads() throws {
        let dir = packageRoot + "/Appliances"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
            $0.hasSuffix(".yaml") || $0.hasSuffix(".appl")
        }
        #expect(names.count >= 5)
        for name in names {
            #expect(throws: Never.self, "\(name)") { _ = try ApplianceLoader().load("\(dir)/\(name)") }
        }
    }

    @Test func boxGrinderApplIsReadUnchanged() throws {
        let appliance = try ApplianceLoader().load(packageRoot + "/Appliances/boxgrinder-jeos.appl")
        #expect(appliance.os.name == .centos)
        #expect(appliance.os.version == "9")
        // BoxGrinder sizes are GB of 1024 MiB: 2 -> 2048 MiB, 0.5 -> 512 MiB.
        #expect(appliance.hardware.partitions.map(\.size.mebibytes) == [2048, 512])
        #expect(appliance.repos.first?.name == "extras-9")
        #expect(appliance.repos.first?.baseurl == "http://repo.example.org/centos/9/extras/x86_64/")
        #expect(appliance.post.base == ["echo 'built by kiln from a BoxGrinder definition' > /etc/motd"])
    }

    @Test func defaultsApplyWhenKeysAreMissing() throws {
        let workspace = try Workspace()
        try workspace.write("a.yaml", minimalDescription)
        let appliance = try workspace.load("a.yaml")
        #expect(appliance.version == 1 && appliance.release == 0)
        #expect(appliance.hardware.partitions == [Partition.defaultRoot])
        #expect(appliance.console == .default)
        #expect(appliance.os.passwordHash == nil)
        #expect(appliance.os.codename == "bookworm")
        #expect(appliance.test == TestSettings())
    }

    @Test(arguments: [
        ("512MiB", 512), ("4GiB", 4096), ("1TiB", 1_048_576), ("500MB", 477), ("8GB", 7630), ("2", 2048),
        ("0.5", 512), ("1.5GiB", 1536),
    ])
    func partitionSizes(text: String, mebibytes: Int64) throws {
        let workspace = try Workspace()
        try workspace.write(
            "a.yaml", minimalDescription + "hardware:\n  partitions:\n    \"/\":\n      size: \(text)\n")
        #expect(try workspace.load("a.yaml").hardware.partitions[0].size.mebibytes == mebibytes)
    }

    @Test func textPasswordsAreStoredOnlyAsStableSHA512Hashes() throws {
        let workspace = try Workspace()
        let text =
            minimalDescription.replacingOccurrences(
                of: "  version: \"12\"\n", with: "  version: \"12\"\n  password: s3cret-root\n")
            + "users:\n  - name: ops\n    password: s3cret-ops\n"
        try workspace.write("a.yaml", text)
        let first = try workspace.load("a.yaml")
        let second = try workspace.load("a.yaml")
        let root = try #require(first.os.passwordHash)
        let ops = try #require(first.users.first?.passwordHash)
        #expect(root.hasPrefix("$6$") && ops.hasPrefix("$6$"))
        #expect(root == second.os.passwordHash, "the salt comes from the description, so output is stable")
        #expect(root != ops)
        // libcrypt itself agrees that the hash is of the password.
        #expect(PasswordHash.crypt("s3cret-root", setting: root) == root)
        #expect(PasswordHash.crypt("wrong", setting: root) != root)
        #expect(!"\(first)".contains("s3cret"))
    }

    @Test func variablesAndBuiltinsAreSubstituted() throws {
        let workspace = try Workspace()
        try workspace.write(
            "a.yaml",
            minimalDescription + """
                variables:
                  MIRROR: "http://mirror.example.org/#OS_NAME#"
                  SUITE: "#OS_VERSION#-#BASE_ARCH#"
                repos:
                  - name: main
                    baseurl: "#MIRROR#/#ARCH#"
                    suite: "#SUITE#"
                post:
                  base:
                    - "echo #SUITE# > /etc/suite"
                """)
        let appliance = try workspace.load("a.yaml")
        #expect(appliance.repos[0].baseurl == "http://mirror.example.org/debian/x86_64")
        #expect(appliance.repos[0].suite == "12-x86_64")
        #expect(appliance.post.base == ["echo 12-x86_64 > /etc/suite"])
    }
}

@Suite struct InheritanceTests {
    @Test func mergesWithBoxGrinderRules() throws {
        let workspace = try Workspace()
        try workspace.write(
            "base.yaml",
            """
            name: base
            os:
              name: debian
              version: "12"
              timezone: Europe/Paris
            hardware:
              cpus: 4
              memory: 512
              partitions:
                "/":
                  size: 8GiB
                "/var":
                  size: 1GiB
            packages: [openssh-server]
            repos:
              - name: parent
                baseurl: http://a.example.org/debian
            post:
              base: ["echo parent"]
            """)
        try workspace.write(
            "child.yaml",
            """
            name: child
            appliances: [base]
            os:
              name: debian
              version: "13"
            hardware:
              cpus: 2
              memory: 2048
              partitions:
                "/":
                  size: 4GiB
                  type: xfs
                "/var":
                  size: 3GiB
            packages: [nginx]
            repos:
              - name: child
                baseurl: http://b.example.org/debian
            post:
              base: ["echo child"]
            """)
        let appliance = try workspace.load("child.yaml")
        #expect(appliance.name == "child")
        #expect(appliance.os.version == "13", "os fields: the child wins")
        #expect(appliance.os.timezone == "Europe/Paris", "os fields the child does not set come from the parent")
        #expect(appliance.hardware.cpus == 4 && appliance.hardware.memory == 2048, "cpus and memory: largest")
        #expect(appliance.hardware.partitions.map(\.mountPoint) == ["/", "/var"])
        #expect(appliance.hardware.partitions.map(\.size.mebibytes) == [8192, 3072], "partition sizes: largest")
        #expect(appliance.hardware.partitions[0].type == .xfs)
        #expect(appliance.packages == ["openssh-server", "nginx"])
        #expect(appliance.repos.map(\.name) == ["parent", "child"])
        #expect(appliance.post.base == ["echo parent", "echo child"])
        #expect(appliance.parents == ["base"])
    }

    @Test func theDebianWebExampleInheritsFromDebianMinimal() throws {
        let appliance = try ApplianceLoader().load(packageRoot + "/Appliances/debian-web.yaml")
        #expect(appliance.packages == ["openssh-server", "ca-certificates", "nginx"])
        #expect(appliance.hardware.partitions.last?.mountPoint == "/", "the growing partition goes last")
        #expect(appliance.hardware.partitions.first { $0.mountPoint == "/" }?.size.mebibytes == 6144)
        #expect(appliance.services.enable == ["ssh", "nginx"])
    }
}
