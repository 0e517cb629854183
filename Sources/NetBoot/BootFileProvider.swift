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
