import Crypto
import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `kiln build --platform vmware` as a user moving an image to VMware runs it: the default
/// appliance locked for the platform, built offline in an empty network namespace into its OVA,
/// and the OVA's disk booted on the hardware ESXi gives it (PVSCSI disk, VMXNET3 network card).
///
/// Its `/` and a `/srv` are encrypted, and it is built on Debian 12, the previous stable release, with
/// a builder guest made from bookworm's packages (one cold build serves the three checks: each costs
/// CI minutes): the initramfs asks for `/`'s passphrase, systemd for `/srv`'s, and `kiln test
/// --passphrase-file` answers both.
@Suite(
    .serialized,
    .requires(
        .root, .kilnBinary, .program("ip"), .program("qemu-system-x86_64"), .program("qemu-img"), .program("partx"),
        .program("sha256sum"), .program("e2fsck"), .program("tar")))
struct PlatformBuildTests {
    @Test func vmwareOVAWithEncryptedPartitionsBootsOnVMwareHardware() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-vmware-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let description = "\(directory)/debian-minimal.yaml"
        let passphrase = "kiln test passphrase \(getpid())"
        let original = try String(
            contentsOfFile: "\(KilnProgram.packageRoot)/Appliances/debian-minimal.yaml", encoding: .utf8)
        let encrypted = original.replacingOccurrences(
            of: "      grow: true\n",
            with: """
                      grow: true
                      passphrase: "\(passphrase)"
                    "/srv":
                      size: 64MiB
                      type: ext4
                      passphrase: "\(passphrase)"

                """
        )
        .replacingOccurrences(of: "  version: \"13\"\n", with: "  version: \"12\"\n")
        try #require(
            encrypted.contains("version: \"12\"") && encrypted.contains("passphrase"),
            "the default appliance no longer says version: \"13\", or its / no longer ends with grow: true")
        try encrypted.write(toFile: description, atomically: true, encoding: .utf8)
        let passphraseFile = "\(directory)/passphrase"
        try (passphrase + "\n").write(toFile: passphraseFile, atomically: true, encoding: .utf8)

        let (locked, _, lockErr) = try BuildFixture.kiln(["lock", description, "--platform", "vmware", "--download"])
        try #require(locked == 0, "kiln lock --platform vmware failed:\n\(lockErr)")
        let lockfile = try String(contentsOfFile: "\(description).lock", encoding: .utf8)
        #expect(lockfile.contains("+deb12"), "the lockfile has no bookworm package")
        #expect(!lockfile.contains("+deb13"), "the lockfile has trixie packages")
        let namespace = "kilnvmware\(getpid())"
        _ = try await Subprocess.output(["ip", "netns", "add", namespace])
        defer {
            _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["ip", "netns", "del", namespace])
        }
        let output = "\(directory)/out"
        // No --format: the platform's own output, an OVA with the vSphere profile.
        let (built, _, buildErr) = try BuildFixture.kiln(
            ["build", description, "-o", output, "--locked", "--offline", "--accel", "tcg", "--platform", "vmware"],
            namespace: namespace)
        try #require(built == 0, "kiln build --platform vmware failed:\n\(buildErr)")

        // The passphrase is in no output, and the published digest of the description is not a fast
        // hash of it: the passphrase is masked first.
        for name in try FileManager.default.contentsOfDirectory(atPath: output) where !name.hasSuffix(".ova") {
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "\(output)/\(name)")), as: UTF8.self)
            #expect(!text.contains(passphrase), "\(name) holds the passphrase")
        }
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(output)/manifest.json"))) as? [String: Any]
        let digest = (manifest?["description"] as? [String: Any])?["sha256"] as? String
        let masked = encrypted.replacingOccurrences(of: passphrase, with: "********")
        #expect(digest == sha256Hex(masked) && digest != sha256Hex(encrypted))

        let packages = try String(contentsOfFile: "\(output)/debian-minimal.packages", encoding: .utf8)
        #expect(packages.split(separator: "\n").contains { $0.hasPrefix("base-files 12.") }, "\(packages)")

        let ova = "\(output)/debian-minimal.ova"
        let (listed, members) = try await Subprocess.output(["tar", "-tf", ova])
        try #require(listed.succeeded, "tar -tf: \(members)")
        let names = members.split(separator: "\n").map(String.init)
        let vmdk = try #require(names.first { $0.hasSuffix(".vmdk") }, "no VMDK in the OVA: \(names)")
        let ovf = try #require(names.first { $0.hasSuffix(".ovf") }, "no OVF in the OVA: \(names)")
        let (extracted, extractLog) = try await Subprocess.output(["tar", "-xf", ova, "-C", directory, vmdk, ovf])
        try #require(extracted.succeeded, "tar -xf: \(extractLog)")

        // The OVF asks ESXi for the hardware the boot below gives the disk.
        let descriptor = try String(contentsOfFile: "\(directory)/\(ovf)", encoding: .utf8)
        #expect(descriptor.contains("<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>"))
        #expect(descriptor.contains("<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>"))

        let (code, out, err) = try BuildFixture.kiln([
            "test", "\(directory)/\(vmdk)", "--machine", "vmware", "--timeout", "600", "--json",
            "--passphrase-file", passphraseFile,
        ])
        #expect(code == 0, "kiln test --machine vmware of the OVA's VMDK failed:\n\(err)")
        let events = out.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let result = events.last { $0["event"] as? String == "result" }
        #expect(result?["machine"] as? String == "vmware" && result?["format"] as? String == "vmdk", "\(out)")
        let typed = events.filter { ($0["message"] as? String)?.contains("passphrase typed") == true }
        #expect(typed.count == 2, "the passphrase was typed \(typed.count) times, for / and /srv:\n\(out)")
        #expect(!out.contains(passphrase) && !err.contains(passphrase))
    }
}

private func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}
