import Appliance
import Foundation
import KilnArchive
import Testing

@testable import Builder

/// The initramfs is made again exactly when the description changes something a hook could copy:
/// a host name, accounts, sudo rules or a file under /srv keep the cached one; a module list, a
/// keyboard (when a hook names /etc/default) or a new binary outside /etc do not.
struct InitramfsInputsTests {
    let hooks = [
        "copy_file config /etc/default/keyboard\n",
        "#!/bin/sh\n# mkinitramfs\nCONFDIR=/etc/initramfs-tools\n. /etc/modprobe.d/x\n",
    ]

    func digest(
        _ files: [String: String],
        appliance: Appliance = Appliance(name: "inputs", os: OperatingSystem(name: .debian, version: "13"))
    ) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-inputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("overlay.tar").path
        let writer = try ArchiveWriter(path: path, format: .paxRestricted)
        for (name, text) in files.sorted(by: { $0.key < $1.key }) {
            try writer.addFile(
                ArchiveEntry(path: name, kind: .file, permissions: 0o644, size: Int64(text.utf8.count)),
                contents: Array(text.utf8))
        }
        try writer.finish()
        return try InitramfsInputs.digest(overlay: path, appliance: appliance, hooks: hooks)
    }

    let base = [
        "etc/hostname": "one\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/sudoers.d/kiln-a": "a ALL\n",
        "etc/default/keyboard": "XKBLAYOUT=us\n", "etc/initramfs-tools/modules": "",
        "srv/data/file": "data\n", "usr/local/bin/tool": "#!/bin/sh\n",
    ]

    @Test func whatNoHookReadsKeepsTheDigest() throws {
        let first = try digest(base)
        for (path, text) in [
            ("etc/hostname", "two\n"), ("etc/passwd", "root:x:0:0::/root:/bin/bash\n"),
            ("etc/sudoers.d/kiln-a", "a ALL=(ALL) NOPASSWD: ALL\n"), ("srv/data/file", "other data\n"),
            ("etc/ssh/sshd_config.d/kiln.conf", "PasswordAuthentication no\n"), ("home/a/.profile", "x\n"),
            ("usr/local/bin/tool", "#!/bin/ab\n"),  // same size: only the path, mode, owner and size count
        ] {
            var files = base
            files[path] = text
            #expect(try digest(files) == first, "\(path)")
        }
    }

    @Test func whatAHookCouldCopyChangesTheDigest() throws {
        let first = try digest(base)
        for (path, text) in [
            ("etc/initramfs-tools/modules", "virtio_blk\n"), ("etc/default/keyboard", "XKBLAYOUT=fr\n"),
            ("etc/modprobe.d/kiln.conf", "options x y=1\n"), ("usr/local/bin/other", "#!/bin/sh\n"),
            ("usr/local/bin/tool", "#!/bin/sh\nexit 0\n"),
        ] {
            var files = base
            files[path] = text
            #expect(try digest(files) != first, "\(path)")
        }
        var appliance = Appliance(name: "inputs", os: OperatingSystem(name: .debian, version: "13"))
        appliance.os.locale = "de_DE.UTF-8"
        #expect(try digest(base, appliance: appliance) != first)
    }
}
