import Foundation
import KilnSupport
import NetBoot
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// kiln's own OpenPGP key for signing lab mirrors, made once with `gpg` and kept in a private
/// GnuPG home (mode 0700, key files 0600) under kiln's cache.
///
/// The public key is exported as a binary keyring (`kiln-lab-mirror.gpg`), the form that `gpgv
/// --keyring`, apt's `signed-by=` and the installer's `/usr/share/keyrings/archive.gpg` read, and as
/// ASCII armor (`kiln-lab-mirror.asc`).
package struct MirrorSigningKey: Sendable {
    /// The folder that holds the GnuPG home and the exported public key.
    package let directory: String
    /// The key's fingerprint (40 hex digits).
    package let fingerprint: String

    package var home: String { "\(directory)/gnupg" }
    /// The public key as a binary OpenPGP keyring.
    package var keyringPath: String { "\(directory)/kiln-lab-mirror.gpg" }
    /// The public key in ASCII armor.
    package var armoredPath: String { "\(directory)/kiln-lab-mirror.asc" }

    /// The key's user id.
    package static let userID = "kiln lab mirror <kiln-lab-mirror@localhost>"

    /// Loads the key in `directory`, or makes one there first (an Ed25519 signing key that does not
    /// expire). Two processes making it at once each make one in a scratch folder and the first rename
    /// wins, so the key never changes once made.
    /// - Throws: `NetBootError(.io)` with what gpg said when it cannot be made or read.
    package static func loadOrCreate(in directory: String) async throws -> MirrorSigningKey {
        if let key = try? load(directory) { return key }
        let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        try makePrivateDirectory(parent)
        let scratch = "\(parent)/.kiln-key-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try makePrivateDirectory(scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let home = "\(scratch)/gnupg"
        try makePrivateDirectory(home)
        try await gpg(
            home: home,
            ["--quick-generate-key", userID, "ed25519", "sign", "never"])
        let fingerprint = try await fingerprint(home: home)
        try await gpg(home: home, ["--output", "\(scratch)/kiln-lab-mirror.gpg", "--export", fingerprint])
        try await gpg(home: home, ["--output", "\(scratch)/kiln-lab-mirror.asc", "--armor", "--export", fingerprint])
        try write(Array((fingerprint + "\n").utf8), to: "\(scratch)/fingerprint")
        if rename(scratch, directory) != 0 && errno != EEXIST && errno != ENOTEMPTY {
            throw NetBootError(
                .io, "cannot move the new signing key to \(directory): \(Errno(rawValue: errno))")
        }
        return try load(directory)
    }

    /// Reads an existing key folder.
    static func load(_ directory: String) throws -> MirrorSigningKey {
        guard FileManager.default.fileExists(atPath: "\(directory)/kiln-lab-mirror.gpg"),
            let text = FileManager.default.contents(atPath: "\(directory)/fingerprint")
        else { throw NetBootError(.notFound, "no signing key in \(directory)") }
        let fingerprint = String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard fingerprint.count == 40 else { throw NetBootError(.io, "\(directory)/fingerprint is not a fingerprint") }
        return MirrorSigningKey(directory: directory, fingerprint: fingerprint)
    }

    /// Writes `text` clear-signed (an `InRelease`) to `clearSigned` and a detached binary signature
    /// (a `Release.gpg`) of the same bytes to `detached`.
    package func sign(_ text: [UInt8], clearSigned: String, detached: String) async throws {
        let scratch = "\(directory)/.sign-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.makePrivateDirectory(scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let input = "\(scratch)/Release"
        try Self.write(text, to: input)
        let common = ["--local-user", fingerprint, "--digest-algo", "SHA256", "--yes"]
        try await Self.gpg(home: home, common + ["--clearsign", "--output", "\(scratch)/InRelease", input])
        try await Self.gpg(home: home, common + ["--detach-sign", "--output", "\(scratch)/Release.gpg", input])
        for (from, to) in [("\(scratch)/InRelease", clearSigned), ("\(scratch)/Release.gpg", detached)] {
            guard let data = FileManager.default.contents(atPath: from) else {
                throw NetBootError(.io, "gpg wrote no \(from)")
            }
            do {
                try AtomicOutput.write(data, to: to)
            } catch {
                throw NetBootError(.io, "cannot write \(to): \(error.reason)")
            }
        }
    }

    /// Runs gpg in batch mode in `home` and returns what it printed; then stops the agent gpg started,
    /// so that nothing kiln started keeps running.
    ///
    /// gpg-agent listens on sockets inside the home, and a socket path has at most 107 bytes: gpg is
    /// given a short link to the home in the temporary folder instead of the home's own path.
    @discardableResult
    static func gpg(home: String, _ arguments: [String]) async throws -> String {
        let link =
            "\(NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/")"
            + "kiln-gpg-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        guard symlink(home, link) == 0 else {
            throw NetBootError(.io, "cannot link \(link) to \(home): \(Errno(rawValue: errno))")
        }
        defer { unlink(link) }
        var environment = Subprocess.minimalEnvironment
        environment["GNUPGHOME"] = link
        let argv = ["gpg", "--batch", "--no-tty", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        let (ended, said): (Subprocess.Termination, String)
        do {
            (ended, said) = try await Subprocess.output(argv + arguments, environment: environment)
        } catch {
            throw NetBootError(.io, "cannot run gpg", underlying: error)
        }
        _ = try? await Subprocess.output(["gpgconf", "--kill", "gpg-agent"], environment: environment)
        guard ended.succeeded else {
            let lines = said.split(separator: "\n").joined(separator: "; ")
            throw NetBootError(.io, "gpg \(arguments.joined(separator: " ")) \(ended) in \(home): \(lines)")
        }
        return said
    }

    static func fingerprint(home: String) async throws -> String {
        let listing = try await gpg(home: home, ["--with-colons", "--list-secret-keys"])
        guard
            let line = listing.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") }),
            let value = line.split(separator: ":", omittingEmptySubsequences: false).dropFirst(9).first,
            value.count == 40
        else { throw NetBootError(.io, "gpg listed no key in \(home)") }
        return String(value)
    }

    static func makePrivateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NetBootError(.io, "cannot create \(path): \(error.localizedDescription)")
        }
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        guard
            FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
        else { throw NetBootError(.io, "cannot write \(path)") }
    }
}
