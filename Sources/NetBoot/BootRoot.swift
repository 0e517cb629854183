import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The folder every served file comes from, and the one place that decides whether a requested path
/// stays inside it.
///
/// A requested name is made relative before anything touches the disk: backslashes become slashes (DOS
/// and some PXE ROMs send them), leading slashes are dropped (an absolute path means "from the root", as
/// tftp-hpa's `--secure` does it; a path that spells the root itself is accepted too, as dnsmasq does),
/// empty and `.` components are dropped, and `..`, control characters and non-UTF-8 names are refused.
/// Then the real path (symlinks followed) must still lie inside the root's real path, and the file is
/// opened without following a last symlink and must be a regular file.
package struct BootRoot: Sendable {
    /// The root's real path, without a trailing slash (except for "/" itself).
    package let path: String

    /// - Throws: `NetBootError(.configuration)` when `path` is not a readable folder.
    package init(_ path: String) throws {
        guard let real = BootRoot.realPath(path) else {
            throw NetBootError(.configuration, "boot root '\(path)' does not exist")
        }
        var info = stat()
        guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw NetBootError(.configuration, "boot root '\(path)' is not a folder")
        }
        self.path = real
    }

    /// The request's name made relative to the root ("a/b/c"), or an error naming why it is refused.
    /// - Throws: `NetBootError(.refused)`.
    package func relativePath(for name: [UInt8]) throws -> String {
        guard let text = String(validating: name, as: UTF8.self) else {
            throw NetBootError(.refused, "file name is not UTF-8")
        }
        if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw NetBootError(.refused, "file name contains control character \(bad.value)")
        }
        var slashed = text.replacingBackslashes()
        if slashed.hasPrefix(path + "/") { slashed.removeFirst(path.count) }
        var components: [Substring] = []
        for component in slashed.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { throw NetBootError(.refused, "file name '\(text)' leaves the boot root") }
            components.append(component)
        }
        guard !components.isEmpty else { throw NetBootError(.refused, "empty file name") }
        return components.joined(separator: "/")
    }

    /// Opens `relative` (from `relativePath(for:)`) for reading.
    /// - Returns: the open descriptor (the caller owns it) and the file's size.
    /// - Throws: `NetBootError(.notFound)` or `NetBootError(.refused)`.
    package func open(_ relative: String) throws -> (descriptor: Int32, size: Int) {
        let joined = path == "/" ? "/" + relative : path + "/" + relative
        guard let real = BootRoot.realPath(joined) else {
            throw NetBootError(.notFound, "'\(relative)' not found")
        }
        guard contains(real) else {
            throw NetBootError(.refused, "'\(relative)' resolves outside the boot root")
        }
        let descriptor = Glibc.open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw NetBootError(.notFound, "'\(relative)' not found") }
            throw NetBootError(.refused, "'\(relative)' cannot be opened: \(Errno(rawValue: code))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw NetBootError(.refused, "'\(relative)' is not a regular file")
        }
        return (descriptor, Int(info.st_size))
    }

    /// Opens a regular file that a `BootFileProvider` named by its absolute path.
    /// - Throws: `NetBootError(.notFound)` or `NetBootError(.refused)`.
    static func openVouched(_ path: String, as relative: String) throws -> (descriptor: Int32, size: Int) {
        let descriptor = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw NetBootError(.notFound, "'\(relative)' not found (\(path))") }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw NetBootError(.refused, "'\(relative)' is not a regular file (\(path))")
        }
        return (descriptor, Int(info.st_size))
    }

    /// Whether an absolute real path lies inside the root.
    func contains(_ real: String) -> Bool {
        path == "/" || real == path || real.hasPrefix(path + "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension String {
    fileprivate func replacingBackslashes() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\\" ? "/" : $0 }))
    }
}
