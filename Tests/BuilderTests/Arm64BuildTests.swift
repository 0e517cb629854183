import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// An arm64 image as a user builds it on an x86_64 host: `Appliances/debian-arm64.yaml` (the smallest
/// bootable arm64 description, no packages of its own) locked with network, built `--locked
/// --offline` inside an emulated arm64 builder guest, and booted to `login:` on QEMU's aarch64 virt
/// board with AAVMF. Its configured base lands in the shared cache, so later runs build warm.
@Suite(
    .serialized,
    .requires(
        .kilnBinary, .program("qemu-system-aarch64"), .program("qemu-img"), .program("partx"),
        .file("/usr/share/AAVMF/AAVMF_CODE.fd")))
struct Arm64BuildTests {
    @Test func anArm64ImageIsBuiltFromArm64PackagesAndBootsUnderAAVMF() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-arm64-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let description = "\(directory)/debian-arm64.yaml"
        try FileManager.default.copyItem(
            atPath: "\(KilnProgram.packageRoot)/Appliances/debian-arm64.yaml", toPath: description)

        let (locked, _, lockErr) = try KilnProgram.run(["lock", description, "--download"])
        try #require(locked == 0, "kiln lock failed:\n\(lockErr)")
        let lock = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(description).lock")))
        #expect((lock as? [String: Any])?["architecture"] as? String == "arm64")

        let output = "\(directory)/out"
        let (built, _, buildErr) = try KilnProgram.run([
            "build", description, "-o", output, "--locked", "--offline", "--accel", "tcg", "--format", "qcow2,libvirt",
        ])
        try #require(built == 0, "kiln build failed:\n\(buildErr)")
        let qcow2 = "\(output)/debian-arm64.qcow2"
        let (checked, check) = try await Subprocess.output(["qemu-img", "check", qcow2])
        #expect(checked.succeeded && check.contains("No errors were found"), "\(check)")

        // GPT with an ESP and the arm64 root partition type (UAPI's discoverable partitions).
        let raw = "\(directory)/disk.raw"
        _ = try await Subprocess.output(["qemu-img", "convert", "-O", "raw", qcow2, raw])
        let (_, table) = try await Subprocess.output(["partx", "--raw", "--noheadings", "-o", "NAME,TYPE", raw])
        #expect(
            table.lowercased().split(separator: "\n").map(String.init) == [
                "esp c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "root b921b045-1df0-41c3-af44-4c6f280d3fae",
            ], "\(table)")
        unlink(raw)

        // Every installed package is arm64 or architecture-independent, in the list and in the SBOM.
        let list = try String(contentsOfFile: "\(output)/debian-arm64.packages", encoding: .utf8)
        let arches = Set(list.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        #expect(arches == ["arm64", "all"], "\(arches)")
        #expect(list.split(separator: "\n").contains { $0.hasPrefix("linux-image-") && $0.hasSuffix(" arm64") })
        #expect(list.contains("grub-efi-arm64-bin ") && !list.contains("grub-pc "))
        let sbom = try String(contentsOfFile: "\(output)/debian-arm64.spdx.json", encoding: .utf8)
        #expect(sbom.contains("?arch=arm64") && !sbom.contains("?arch=amd64"))
        let domain = try String(contentsOfFile: "\(output)/debian-arm64.libvirt.xml", encoding: .utf8)
        #expect(domain.contains("arch=\"aarch64\" machine=\"virt\""))

        // kiln test finds BOOTAA64.EFI on the ESP and boots on the virt board with AAVMF.
        let (tested, _, testErr) = try KilnProgram.run(["test", qcow2, "--timeout", "900"])
        #expect(tested == 0, "kiln test failed:\n\(testErr)")
        // What kiln says goes to standard error, as for every command (standard output is --json's).
        #expect(testErr.contains("booted to \"login:\"") && testErr.contains("aarch64, uefi"), "\(testErr)")
        // Firmware or hardware that no arm64 machine has is refused before QEMU starts.
        let (biosCode, _, biosErr) = try KilnProgram.run(["test", qcow2, "--firmware", "bios"])
        #expect(biosCode == 1 && biosErr.contains("UEFI only"), "\(biosErr)")
    }
}
