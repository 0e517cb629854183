import Foundation
import KilnTestSupport
import Testing

@testable import Packages

@Suite struct ResolverTests {
    static let source = ArchiveSource(uri: "http://archive.example.org/debian", suite: "stable", components: ["main"])

    static func package(
        _ name: String, _ version: String, essential: Bool = false, priority: String = "optional",
        depends: String? = nil, preDepends: String? = nil, provides: String? = nil, conflicts: String? = nil,
        breaks: String? = nil
    ) throws -> BinaryPackage {
        BinaryPackage(
            name: name, version: try DebianVersion(version), architecture: "amd64", priority: priority,
            essential: essential, depends: depends, preDepends: preDepends, provides: provides, conflicts: conflicts,
            breaks: breaks, filename: "pool/main/\(name)_\(version)_amd64.deb", size: 1,
            sha256: String(repeating: "a", count: 64), source: source)
    }

    static func index(_ packages: [BinaryPackage]) throws -> Resolver {
        Resolver(index: try PackageIndex(packages: packages, architecture: "amd64"))
    }

    @Test func baseSetsFollowMmdebstrap() throws {
        let resolver = try Self.index([
            try Self.package("dpkg", "1.21", essential: true, priority: "required", preDepends: "libc6"),
            try Self.package("libc6", "2.36", priority: "optional"),
            try Self.package("login", "1:4.13", priority: "required"),
            try Self.package("apt", "2.6", priority: "important", depends: "libc6"),
            try Self.package("vim", "9.0", priority: "optional"),
        ])
        #expect(resolver.baseNames(.essential) == ["dpkg"])
        #expect(resolver.baseNames(.minbase) == ["apt", "dpkg", "login"])
        #expect(try resolver.resolve([], base: .minbase).packages.map(\.name) == ["apt", "dpkg", "libc6", "login"])
        #expect(try resolver.resolve(["vim"], base: .none).packages.map(\.name) == ["vim"])
    }

    @Test func alternativesPreferWhatIsAlreadyChosen() throws {
        let resolver = try Self.index([
            try Self.package("app", "1", depends: "mawk | gawk, gawk (>= 5)"),
            try Self.package("mawk", "1.3"),
            try Self.package("gawk", "5.2"),
            try Self.package("tool", "1", depends: "mawk-missing | gawk"),
        ])
        // The hard dependency on gawk is settled first, so the alternative needs nothing more.
        #expect(try resolver.resolve(["app"], base: .none).packages.map(\.name) == ["app", "gawk"])
        #expect(try resolver.resolve(["tool"], base: .none).packages.map(\.name) == ["gawk", "tool"])
    }

    @Test func virtualPackagesAndVersionConstraints() throws {
        let resolver = try Self.index([
            try Self.package("mta-user", "1", depends: "mail-transport-agent, libfoo (>= 2), shim (= 3)"),
            try Self.package("exim4", "4.96", priority: "standard", provides: "mail-transport-agent"),
            try Self.package("postfix", "3.7", priority: "optional", provides: "mail-transport-agent"),
            try Self.package("libfoo", "1.0"),
            try Self.package("libfoo", "2.1"),
            try Self.package("libfoo", "3.0~rc1"),
            try Self.package("shim-impl", "1", provides: "shim (= 3)"),
            try Self.package("shim-old", "1", provides: "shim"),
        ])
        let resolution = try resolver.resolve(["mta-user"], base: .none)
        #expect(resolution.packages.map(\.label) == ["exim4=4.96", "libfoo=3.0~rc1", "mta-user=1", "shim-impl=1"])
        #expect(try resolver.resolve(["libfoo=2.1"], base: .none).packages.map(\.label) == ["libfoo=2.1"])
        #expect(
            throws: PackagesError(
                .resolution, "mail-transport-agent is a virtual package provided by exim4, postfix: name one of them")
        ) { try resolver.resolve(["mail-transport-agent"], base: .none) }
        #expect(throws: PackagesError.self) { try resolver.resolve(["nonexistent"], base: .none) }
    }

    /// A description written for amd64 and built for arm64 asks for packages that arm64 has not: one
    /// error names them all, with the architecture.
    @Test func everyMissingRequestedPackageIsNamedWithTheArchitecture() throws {
        let resolver = try Self.index([try Self.package("vim", "9.0")])
        #expect(
            throws: PackagesError(
                .resolution,
                "no packages named grub-pc, intel-microcode in the archive for amd64 (asked for by the requested packages)"
            )
        ) { try resolver.resolve(["vim", "grub-pc", "intel-microcode=3"], base: .none) }
        #expect(
            throws: PackagesError(
                .resolution, "no package named grub-pc in the archive for amd64 (asked for by the requested packages)")
        ) { try resolver.resolve(["grub-pc"], base: .none) }
    }

    @Test func conflictsSteerAlternativesAndOtherwiseFail() throws {
        let resolver = try Self.index([
            try Self.package("a", "1", depends: "b | c"),
            try Self.package("b", "1", conflicts: "d"),
            try Self.package("c", "1"),
            try Self.package("d", "1"),
            try Self.package("e", "1", breaks: "d (<< 2)"),
            try Self.package("f", "1", provides: "virt", conflicts: "virt"),
        ])
        #expect(try resolver.resolve(["d", "a"], base: .none).packages.map(\.name) == ["a", "c", "d"])
        #expect(try resolver.resolve(["f"], base: .none).packages.map(\.name) == ["f"])
        #expect(
            throws: PackagesError(
                .resolution,
                "the chosen packages cannot be installed together: e=1 conflicts with or breaks d=1 (d (<< 2))")
        ) { try resolver.resolve(["d", "e"], base: .none) }
    }

    /// The brief's appliance against the real archive: a bootable minbase with systemd, a cloud
    /// kernel, GRUB and ssh. apt's own solver is compared in Benchmarks/resolve-apt.sh; here the
    /// closure must hold what any such system needs, and every dependency inside it must hold.
    @Test(.requires(TestSupport.archiveReachable, "the host's apt sources, gpgv and debian-archive-keyring"))
    func hostArchiveClosureIsComplete() async throws {
        let index = try await TestSupport.hostIndex.value
        let resolver = Resolver(index: index)
        let resolution = try resolver.resolve(["systemd-sysv", "linux-image-cloud-amd64", "grub-pc", "openssh-server"])
        let names = Set(resolution.packages.map(\.name))
        for needed in ["apt", "dpkg", "systemd", "udev", "openssh-server", "grub-pc", "initramfs-tools", "libc6"] {
            #expect(names.contains(needed), "\(needed) missing")
        }
        #expect(
            names.contains {
                $0.hasPrefix("linux-image-") && $0.hasSuffix("-cloud-amd64") && $0 != "linux-image-cloud-amd64"
            })
        #expect(!names.contains("sysvinit-core"))
        for package in resolution.packages {
            #expect(index.candidate(package.name)?.version == package.version, "\(package.label) is not the candidate")
        }
    }
}
