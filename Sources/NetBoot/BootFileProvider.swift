import NIOCore

/// Who asks for a file: what a generator may use to decide what to answer.
public struct BootClient: Sendable, Equatable {
    /// How the file is asked for.
    public enum Transport: String, Sendable {
        case tftp
        case http
    }

    /// The client's address, as the server saw it.
    public var address: SocketAddress?
    public var transport: Transport

    public init(address: SocketAddress?, transport: Transport) {
        self.address = address
        self.transport = transport
    }
}

/// Files compiled when asked for (per-host boot menus, kickstarts, preseeds), served before the disk.
///
/// Paths are relative to the boot root, `/`-separated, already checked to stay inside it
/// (`pxelinux.cfg/01-52-54-00-12-34-56`, `ks/lab-07.cfg`).
public protocol BootFileProvider: Sendable {
    /// The file generated for `path`, or nil when `path` is not a generated file (then the disk answers).
    func file(at path: String, for client: BootClient) async throws -> [UInt8]?

    /// A file outside the boot root served for `path` (an absolute path the provider vouches for, such
    /// as a lab host's own installer kernel), or nil.
    func diskFile(at path: String, for client: BootClient) async throws -> String?
}

extension BootFileProvider {
    public func diskFile(at path: String, for client: BootClient) async throws -> String? { nil }
}

/// Providers asked in order: the first one that answers a path wins.
public struct ChainedFiles: BootFileProvider {
    public var providers: [any BootFileProvider]

    public init(_ providers: [any BootFileProvider]) {
        self.providers = providers
    }

    public func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        for provider in providers {
            if let bytes = try await provider.file(at: path, for: client) { return bytes }
        }
        return nil
    }

    public func diskFile(at path: String, for client: BootClient) async throws -> String? {
        for provider in providers {
            if let file = try await provider.diskFile(at: path, for: client) { return file }
        }
        return nil
    }
}

/// A `BootFileProvider` made of a closure.
public struct GeneratedFiles: BootFileProvider {
    private let generate: @Sendable (String, BootClient) async throws -> [UInt8]?

    public init(_ generate: @escaping @Sendable (_ path: String, _ client: BootClient) async throws -> [UInt8]?) {
        self.generate = generate
    }

    /// No generated files: everything comes from the disk.
    public static let none = GeneratedFiles { _, _ in nil }

    public func file(at path: String, for client: BootClient) async throws -> [UInt8]? {
        try await generate(path, client)
    }
}
