import Crypto
import Foundation
import Testing

@testable import Packages

@Suite struct RootfsBundleTests {
    static var haveTools: Bool { ["dpkg-deb", "dpkg-query", "tar", "diff"].allSatisfy(TestSupport.hasProgram) }

    /// Builds a small package with dpkg-deb: a binary, a conffile, a symlink, a hard link and
    /// maintainer scripts.
    static func buildDeb(in dir: String, name: String, compression: String) async throws -> LocalPackage {
        let root = "\(dir)/\(name)-src"
        let fm = FileManager.default
        for sub in ["DEBIAN", "etc", "usr/bin", "usr/share/doc/\(name)"] {
            try fm.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
        }
        try """
        Package: \(name)
        Version: 1.0-1
        Architecture: amd64
        Maintainer: Tester <tester@example.org>
        Multi-Arch: same
        Description: a test package
         with a second line
         .
         and a paragraph

        """.write(toFile: "\(root)/DEBIAN/control", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexit 0\n".write(toFile: "\(root)/DEBIAN/postinst", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexit 0\n".write(toFile: "\(root)/DEBIAN/preinst", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(root)/DEBIAN/postinst")
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(root)/DEBIAN/preinst")
        try "/etc/\(name).conf\n".write(toFile: "\(root)/DEBIAN/conffiles", atomically: true, encoding: .utf8)
        try "setting = 1\n".write(toFile: "\(root)/etc/\(name).conf", atomically: true, encoding: .utf8)
        try Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(
            to: URL(fileURLWithPath: "\(root)/usr/bin/\(name)"))
        try fm.setAttributes([.posixPermissions: 0o4755], ofItemAtPath: "\(root)/usr/bin/\(name)")
        try fm.linkItem(atPath: "\(root)/usr/bin/\(name)", toPath: "\(root)/usr/bin/\(name)-hard")
        try fm.createSymbolicLink(atPath: "\(root)/usr/bin/\(name)-link", withDestinationPath: name)
        let deb = "\(dir)/\(name).deb"
        let (status, output) = try await TestSupport.run(
            ["dpkg-deb", "--root-owner-group", "-Z\(compression)", "--build", root, deb])
        #expect(status == 0, "\(output)")
        let data = try Data(contentsOf: URL(fileURLWithPath: deb))
        return LocalPackage(
            package: Lockfile.Package(
                name: name, version: "1.0-1", architecture: "amd64", uri: "file://\(dir)", suite: "x",
                filename: "\(name).deb", size: Int64(data.count), sha256: SHA256.hash(data: data).hex),
            path: deb)
    }

    /// The bundle, extracted by GNU tar, holds exactly what `dpkg-deb -x` extracts, and dpkg-query
    /// reads the database it carries.
    @Test(.enabled(if: haveTools, "needs dpkg-deb, dpkg-query, tar and diff"))
    func bundleMatchesDpkgDebAndDpkgReadsItsDatabase() async throws {
        let dir = try TestSupport.scratch("bundle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let packages = [
            try await Self.buildDeb(in: dir, name: "alpha", compression: "xz"),
            try await Self.buildDeb(in: dir, name: "beta", compression: "gzip"),
        ]
        let summary = try RootfsBundle.write(packages, to: "\(dir)/bundle.tar", epoch: 1_700_000_000, mergedUsr: false)
        #expect(summary.packages == 2)

        try FileManager.default.createDirectory(atPath: "\(dir)/ours", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/theirs", withIntermediateDirectories: true)
        #expect(try await TestSupport.run(["tar", "-xpf", "\(dir)/bundle.tar", "-C", "\(dir)/ours"]).0 == 0)
        for package in packages {
            #expect(try await TestSupport.run(["dpkg-deb", "-x", package.path, "\(dir)/theirs"]).0 == 0)
        }
        let (same, difference) = try await TestSupport.run(
            ["diff", "-r", "--no-dereference", "-x", "var", "\(dir)/ours", "\(dir)/theirs"])
        #expect(same == 0, "\(difference)")
        let mode =
            try FileManager.default.attributesOfItem(atPath: "\(dir)/ours/usr/bin/alpha")[.posixPermissions] as? Int
        #expect(mode == 0o4755)
        let links =
            try FileManager.default.attributesOfItem(atPath: "\(dir)/ours/usr/bin/alpha")[.referenceCount] as? Int
        #expect(links == 2)

        let admin = "\(dir)/ours/var/lib/dpkg"
        let (queried, listing) = try await TestSupport.run(
            ["dpkg-query", "--admindir=\(admin)", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"])
        #expect(queried == 0, "\(listing)")
        #expect(listing == "alpha 1.0-1 iU \nbeta 1.0-1 iU \n")
        let (listed, files) = try await TestSupport.run(["dpkg-query", "--admindir=\(admin)", "-L", "alpha"])
        #expect(listed == 0, "\(files)")
        #expect(files.contains("/usr/bin/alpha-link") && files.contains("/etc/alpha.conf"), "\(files)")
        let status = try String(contentsOfFile: "\(admin)/status", encoding: .utf8)
        let md5 = Insecure.MD5.hash(data: Data("setting = 1\n".utf8)).hex
        #expect(status.contains("Conffiles:\n /etc/alpha.conf \(md5)"))
        #expect(status.contains("Description: a test package\n with a second line\n .\n and a paragraph"))
        #expect(FileManager.default.isExecutableFile(atPath: "\(admin)/info/alpha:amd64.postinst"))
        #expect(
            try String(contentsOfFile: "\(dir)/ours/var/lib/kiln/preinst-order", encoding: .utf8)
                == "alpha:amd64 alpha amd64\nbeta:amd64 beta amd64\n")

        // Same inputs and epoch: the same bytes.
        _ = try RootfsBundle.write(packages, to: "\(dir)/again.tar", epoch: 1_700_000_000, mergedUsr: false)
        #expect(FileManager.default.contentsEqual(atPath: "\(dir)/bundle.tar", andPath: "\(dir)/again.tar"))

        // Merged /usr: the top-level directories are links, and what packages put there lands in usr.
        _ = try RootfsBundle.write(packages, to: "\(dir)/merged.tar", epoch: 1_700_000_000)
        try FileManager.default.createDirectory(atPath: "\(dir)/merged", withIntermediateDirectories: true)
        #expect(try await TestSupport.run(["tar", "-xpf", "\(dir)/merged.tar", "-C", "\(dir)/merged"]).0 == 0)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/merged/bin") == "usr/bin")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/merged/bin/alpha"))
    }

    @Test func notADebIsAClearError() throws {
        let dir = try TestSupport.scratch("bundle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not an ar archive".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.deb"))
        #expect(throws: PackagesError.self) { try DebArchive.control("\(dir)/bad.deb") }
    }
}
