import ArgumentParser
import Logging
import NetBoot

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve PXE installs: TFTP, HTTP and DHCP.",
        discussion: """
            With --tftp-root, serves one folder over TFTP (read-only) and HTTP, with no DHCP.
            Runs until interrupted (SIGINT or SIGTERM).
            """
    )

    @Option(help: "The lab file.")
    var config: String?

    @Option(
        name: .customLong("tftp-root"), help: ArgumentHelp("Serve this folder, with no lab file.", valueName: "dir"))
    var tftpRoot: String?

    @Option(help: ArgumentHelp("TFTP address and port ('off' for none).", valueName: "addr:port"))
    var tftp = "[::]:69"

    @Option(help: ArgumentHelp("HTTP address and port ('off' for none).", valueName: "addr:port"))
    var http = "[::]:80"

    @Option(help: "TFTP transfers in flight at once, all clients together.")
    var maxTransfers = 1024

    @Option(help: "TFTP transfers in flight at once from one client address.")
    var maxTransfersPerClient = 64

    @Option(help: "Largest TFTP window (RFC 7440) granted to a client.")
    var maxWindowSize = 64

    @Flag(help: "Log every request, not only transfers.")
    var verbose = false

    func validate() throws {
        if config == nil && tftpRoot == nil {
            throw ValidationError("give --config FILE or --tftp-root DIR")
        }
        if config != nil && tftpRoot != nil {
            throw ValidationError("--config and --tftp-root cannot be used together")
        }
        guard maxTransfers > 0, maxTransfersPerClient > 0 else {
            throw ValidationError("transfer limits must be at least 1")
        }
        guard TFTPNegotiation.windowSizeRange.contains(maxWindowSize) else {
            throw ValidationError("--max-window-size must be within 1...65535")
        }
    }

    func run() async throws {
        guard let tftpRoot else {
            throw CommandFailure("'kiln serve --config' is not available yet in this version of kiln")
        }
        var logger = Logger(label: "kiln.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .info
        let root: BootRoot
        do {
            root = try BootRoot(tftpRoot)
        } catch let error as NetBootError {
            throw CommandFailure(error.message)
        }
        var servers: [@Sendable () async throws -> Void] = []
        if tftp != "off" {
            let address = try parse(tftp, option: "--tftp", defaultPort: 69)
            let configuration = TFTPServerConfiguration(
                root: root, limits: TFTPLimits(maximumWindowSize: maxWindowSize), maximumTransfers: maxTransfers,
                maximumTransfersPerClient: maxTransfersPerClient)
            let server: TFTPServer
            do {
                server = try await TFTPServer.bind(
                    host: address.host, port: address.port, configuration: configuration, logger: logger)
            } catch let error as NetBootError {
                throw CommandFailure(error.description, hint: address.port < 1024 ? "ports below 1024 need root" : nil)
            }
            Console.standardError.write("kiln: TFTP on \(server.boundAddress) serving \(root.path)")
            servers.append { try await server.run() }
        }
        if http != "off" {
            let address = try parse(http, option: "--http", defaultPort: 80)
            let server: HTTPBootServer
            do {
                server = try await HTTPBootServer.bind(
                    host: address.host, port: address.port, root: root, logger: logger)
            } catch let error as NetBootError {
                throw CommandFailure(error.description, hint: address.port < 1024 ? "ports below 1024 need root" : nil)
            }
            Console.standardError.write("kiln: HTTP on \(server.boundAddress) serving \(root.path)")
            servers.append { try await server.run() }
        }
        guard !servers.isEmpty else { throw CommandFailure("nothing to serve: both --tftp and --http are off") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { try await server() } }
            try await group.next()
            group.cancelAll()
        }
    }

    private func parse(_ text: String, option: String, defaultPort: Int) throws -> HostPort {
        do {
            return try HostPort(parsing: text, defaultPort: defaultPort)
        } catch let error as NetBootError {
            throw CommandFailure("\(option): \(error.message)", exitCode: 2)
        }
    }
}
