import Foundation
import KilnArchive
import KilnSupport
import NetBoot

/// A second initramfs archive that makes Debian's netboot installer trust kiln's lab mirror.
///
/// The kernel unpacks an initrd made of several concatenated archives in order, and a later file
/// replaces an earlier one (Documentation/driver-api/early-userspace/buffer-format.rst), so Debian's
/// `initrd.gz` followed by this one is the installer with these files added:
///
/// - `/usr/share/keyrings/archive.gpg`: kiln's public key. net-retriever (which fetches the udebs)
///   and bootstrap-base (which runs debootstrap with `--keyring`) both check the mirror's Release with
///   this file; debian-archive-keyring-udeb only links it to Debian's keyring when it is absent.
/// - `/usr/lib/base-installer.d/05kiln-lab-mirror`: a hook base-installer runs right after debootstrap
///   and before its first `apt-get update` in the target, which copies the key into the target's
///   `/etc/apt/trusted.gpg.d/`, so that apt in the installed system trusts the mirror too.
/// - `/preseed.cfg` when a preseed is given (d-i reads it from the initrd before any network).
package enum InstallerOverlay {
    /// Where the target keeps the key.
    package static let targetKeyPath = "/etc/apt/trusted.gpg.d/kiln-lab-mirror.gpg"

    static let hook = """
        #!/bin/sh
        # Written by kiln: the installed system trusts the lab mirror it is installed from.
        set -e
        mkdir -p /target/etc/apt/trusted.gpg.d
        cp /usr/share/keyrings/archive.gpg /target\(targetKeyPath)
        chmod 0644 /target\(targetKeyPath)

        """

    /// The overlay as a gzip'd newc cpio archive.
    ///
    /// - Parameters:
    ///   - keyring: the public key as a binary OpenPGP keyring (`MirrorSigningKey.keyringPath`).
    ///   - preseed: a preseed to put at `/preseed.cfg`, or nil.
    package static func make(keyring: [UInt8], preseed: String? = nil) throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kiln-overlay-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).cpio.gz"
        ).path
        defer { unlink(path) }
        do {
            let writer = try ArchiveWriter(path: path, format: .cpioNewc, compression: .gzip)
            for directory in ["usr", "usr/share", "usr/share/keyrings", "usr/lib", "usr/lib/base-installer.d"] {
                try writer.add(ArchiveEntry(path: directory, kind: .directory, permissions: 0o755))
            }
            try writer.addFile(
                ArchiveEntry(path: "usr/share/keyrings/archive.gpg", kind: .file, permissions: 0o644), contents: keyring
            )
            try writer.addFile(
                ArchiveEntry(path: "usr/lib/base-installer.d/05kiln-lab-mirror", kind: .file, permissions: 0o755),
                contents: Array(hook.utf8))
            if let preseed {
                try writer.addFile(
                    ArchiveEntry(path: "preseed.cfg", kind: .file, permissions: 0o644), contents: Array(preseed.utf8))
            }
            try writer.finish()
        } catch {
            throw NetBootError(.io, "cannot write the installer overlay", underlying: error)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NetBootError(.io, "cannot read the installer overlay \(path)")
        }
        return Array(data)
    }

    /// Writes Debian's initrd followed by the overlay (what a host boots) to `path`, atomically.
    package static func writeInitrd(debian: String, keyring: [UInt8], preseed: String? = nil, to path: String) throws {
        guard var bytes = FileManager.default.contents(atPath: debian).map(Array.init) else {
            throw NetBootError(.notFound, "cannot read the installer's initrd \(debian)")
        }
        // The kernel's reader skips zeros between archives; keep the overlay on a 4-byte boundary.
        while bytes.count % 4 != 0 { bytes.append(0) }
        bytes += try make(keyring: keyring, preseed: preseed)
        do {
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try AtomicOutput.write(Data(bytes), to: path)
        } catch let error as NetBootError {
            throw error
        } catch {
            throw NetBootError(.io, "cannot write \(path): \(error)")
        }
    }
}
