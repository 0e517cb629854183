import NIOCore

/// Who asks for a file: what a generator may use to decide what to answer.
package struct BootClient: Sendable, Equatable {
    /// How the file is asked for.
    package enum Transport: String, Sendable {
        case tftp
        case http
    }

    /// The client's address, as the server saw it.
    package var address: SocketAddress?
    package var transport: Transport

    package init(address: SocketAddress?, transport: Transport) {
        self.address = address
        self.transport = transport
    }
}

/// Files compiled when asked for (per-host boot menus, kickstarts, preseeds), served before the disk.
///
/// Paths are relative to the boot root, `/`-separated, already checked to stay inside it
/// (`pxelinux.cfg/01-52-54-00-12-34-56`, `ks/lab-07.cfg`).
package protocol BootFileProvider: Sendable {
    /// The file generated for `path`, or nil when `path` is not a generated file (then the disk answers).
    func file(at path: String, for client: BootClient) async throws -> [UInt8]?

    /// A file outside the boot root served for `path` (an absolute path the provider vouches for, such
    /// as a lab host's own installer kernel), or nil.
    func diskFile(at path: String, for client: BootClient) async throws -> String?

    /// Part of a file served for `path` (HTTP only), or nil.
    func diskRange(at path: String, for client: BootClient) async throws -> DiskRange?
}

extension BootFileProvider {
    package func diskFile(at path: String, for client: BootClient) async throws -> String? { nil }
    package func diskRange(at path: String, for client: BootClient) async throws -> DiskRange? { nil }
}

/// Part of a file served as a whole response (over HTTP): a piece of a disk image, streamed from the
/// file rather than held in memory.
package struct DiskRange: Sendable, Equatable {
    /// An absolute path the provider vouches for.
    package var path: String
    package var range: Range<Int>

    package init(path: String, range: Range<Int>) {
        self.path = path
        self.range = range
    }
}

/// Providers asked in order: the first one that answers a path wins.
package struct ChainedFiles: BootFileProvider {
    package var providers: [any BootFileProvider]

    package init(_ providers: [any BootFileProvider]) {
        self.providers = providers
    }

    package func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        for provider in providers {
            if let bytes = try await provider.file(at: path, for: client) { return bytes }
        }
        return nil
    }

    package func diskFile(at path: String, for client: BootClient) async throws -> String? {
        for provider in providers {
            if let file = try await provider.diskFile(at: path, for: client) { return file }
        }
        return nil
    }

    package func diskRange(at path: String, for client: BootClient) async throws -> DiskRange? {
        for provider in providers {
            if let range = try await provider.diskRange(at: path, for: client) { return range }
        }
        return nil
    }
}

/// A `BootFileProvider` made of a closure.
package struct GeneratedFiles: BootFileProvider {
    private let generate: @Sendable (String, BootClient) async throws -> [UInt8]?

    package init(_ generate: @escaping @Sendable (_ path: String, _ client: BootClient) async throws -> [UInt8]?) {
        self.generate = generate
    }

    /// No generated files: everything comes from the disk.
    package static let none = GeneratedFiles { _, _ in nil }

    package func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        try await generate(path, client)
    }
}
