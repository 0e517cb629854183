import Appliance
import ArgumentParser
import KilnSupport
import Lab
import Logging
import NetBoot
import Packages

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve PXE installs: TFTP, HTTP and DHCP.",
        discussion: """
            With --config, serves a lab: boot loaders and Debian's netboot installer (taken from Debian \
            packages, locked in FILE.lock beside the lab file and kept in kiln's cache), per-host boot \
            menus, preseeds and kickstarts compiled from the hosts' descriptions, and proxyDHCP or a full \
            DHCP server. A changed lab file is picked up while serving.
            With --tftp-root, serves one folder over TFTP (read-only) and HTTP, with no DHCP. HTTP listens \
            where --http says or, without it, on port 80 of the address TFTP was given, never on more \
            addresses than TFTP: `--tftp 127.0.0.1:6969` keeps the folder on loopback.
            Runs until interrupted (SIGINT or SIGTERM).
            """
    )

    @Option(help: "The lab file.")
    var config: String?

    @Option(
        name: .customLong("tftp-root"),
        help: ArgumentHelp(
            "Serve this folder (with --config: instead of the boot files from Debian packages).", valueName: "dir"))
    var tftpRoot: String?

    @Option(
        help: ArgumentHelp("TFTP address and port ('off' for none); a lab file names its own.", valueName: "addr:port"))
    var tftp = "[::]:69"

    @Option(
        help: ArgumentHelp(
            "HTTP address and port ('off' for none; default: port 80 on the TFTP address); a lab file names its own.",
            valueName: "addr:port"))
    var http: String?

    @Option(help: "TFTP transfers in flight at once, all clients together.")
    var maxTransfers = 1024

    @Option(help: "TFTP transfers in flight at once from one client address.")
    var maxTransfersPerClient = 64

    @Option(help: "Largest TFTP window (RFC 7440) granted to a client.")
    var maxWindowSize = 64

    @Flag(help: "Log every request, not only transfers.")
    var verbose = false

    @Flag(help: "Log as JSON lines on stdout: {\"event\": \"listening\" | \"log\", ...}.")
    var json = false

    @Flag(help: "With --config: use only the boot lockfile and kiln's cache (no archive access).")
    var offline = false

    @Flag(help: "With --config: fetch and unpack the boot loaders, installers and deploy agent, then exit.")
    var prepare = false

    @Option(
        help: ArgumentHelp(
            "With --config: forget that this host finished (or failed) installing, so that its next network boot installs it again; then exit.",
            valueName: "name"))
    var reinstall: String?

    /// Where the host's apt sources are read from (tests point it elsewhere).
    @Option(name: .customLong("apt-sources"), help: .hidden)
    var aptSources = "/etc/apt"

    func validate() throws {
        if config == nil && tftpRoot == nil {
            throw ValidationError("give --config FILE or --tftp-root DIR")
        }
        if config == nil && (offline || prepare || reinstall != nil) {
            throw ValidationError("--offline, --prepare and --reinstall go with --config")
        }
        if tftpRoot != nil && prepare {
            throw ValidationError("--prepare fetches the boot files that --tftp-root replaces")
        }
        guard maxTransfers > 0, maxTransfersPerClient > 0 else {
            throw ValidationError("transfer limits must be at least 1")
        }
        guard TFTPNegotiation.windowSizeRange.contains(maxWindowSize) else {
            throw ValidationError("--max-window-size must be within 1...65535")
        }
    }

    func run() async throws {
        let console = Console(json: json)
        var logger = Logger(label: "kiln.serve") { label -> any LogHandler in
            json ? JSONLogHandler(label: label, console: console) : ServeLogHandler()
        }
        logger.logLevel = verbose ? .debug : .info
        if config != nil { return try await serveLab(logger: logger) }
        guard let tftpRoot else { return }
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
            announce("TFTP", server.boundAddress, root: root.path, console: console)
            servers.append { try await server.run() }
        }
        if let address = try httpAddress() {
            let server: HTTPBootServer
            do {
                server = try await HTTPBootServer.bind(
                    host: address.host, port: address.port, root: root, logger: logger)
            } catch let error as NetBootError {
                guard http == nil, !servers.isEmpty else {
                    throw CommandFailure(
                        error.description, hint: address.port < 1024 ? "ports below 1024 need root" : nil)
                }
                // HTTP was not asked for: TFTP alone serves the folder.
                Console.standardError.write(
                    "kiln: warning: no HTTP: \(error.description); --http ADDR:PORT serves it elsewhere")
                return try await serveAll(servers)
            }
            announce("HTTP", server.boundAddress, root: root.path, console: console)
            servers.append { try await server.run() }
        }
        try await serveAll(servers)
    }

    /// `kiln: TFTP on ADDR:PORT serving ROOT` on stderr and, with --json, a `listening` object on stdout.
    private func announce(_ service: String, _ address: some CustomStringConvertible, root: String, console: Console) {
        Console.standardError.write("kiln: \(service) on \(address) serving \(root)")
        console.event("listening", Listening(service: service.lowercased(), address: "\(address)", root: root))
    }

    /// `{"event": "listening", ...}`: a server of `kiln serve` is up.
    struct Listening: Encodable {
        let service: String
        let address: String
        let root: String
    }

    /// Where `--tftp-root` serves HTTP: where --http says, or port 80 on the address TFTP was given (so
    /// that `--tftp 127.0.0.1:6969` keeps the folder on loopback); nil for none.
    func httpAddress() throws -> HostPort? {
        if let http {
            return http == "off" ? nil : try parse(http, option: "--http", defaultPort: 80)
        }
        if tftp == "off" { return try parse("[::]:80", option: "--http", defaultPort: 80) }
        let tftpAddress = try parse(tftp, option: "--tftp", defaultPort: 69)
        return HostPort(host: tftpAddress.host, port: 80)
    }

    private func serveAll(_ servers: [@Sendable () async throws -> Void]) async throws {
        guard !servers.isEmpty else { throw CommandFailure("nothing to serve: both --tftp and --http are off") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { try await server() } }
            try await group.next()
            group.cancelAll()
        }
    }

    /// `--config`: the lab's boot files, then its servers until interrupted.
    private func serveLab(logger: Logger) async throws {
        guard let config else { return }
        let lab: LabConfig
        do {
            lab = try LabConfig.load(config)
        } catch let error as NetBootError {
            throw CommandFailure(lines: error.message.split(separator: "\n").map(String.init))
        }
        if let reinstall {
            do {
                let files = try LabBootFiles(config: lab, logger: logger)
                let forgot = try files.reinstall(reinstall)
                Console.standardError.write(
                    forgot
                        ? "kiln: \(reinstall) installs again at its next network boot"
                        : "kiln: \(reinstall) had not installed; it installs at its next network boot")
            } catch let error as NetBootError {
                throw CommandFailure(error.message)
            }
            return
        }
        var tree = tftpRoot ?? ""
        if tftpRoot == nil { tree = try await prepareBootFiles(lab, config: config) }
        // What lab hosts install from: kiln's package mirror, its packages fetched ahead by --prepare too
        // (not with --tftp-root, whose tree has no installers of kiln's).
        var (mirror, services): (LabMirror?, LabServices) = (nil, LabServices())
        if tftpRoot == nil {
            do {
                let sources = try AptSources.load(
                    listFile: "\(aptSources)/sources.list", partsDirectory: "\(aptSources)/sources.list.d")
                (mirror, services) = try await LabMirror.forLab(
                    lab, tree: tree, sources: sources, offline: offline,
                    cache: PackageCache(root: KilnCache.root()),
                    progress: Console.standardError.sink, logger: logger)
            } catch {
                throw CommandFailure("lab mirror: \(error)")
            }
        }
        let deploys = LabDeploys(
            lab: lab, aptRoot: aptSources, offline: offline, progress: Console.standardError.sink)
        if lab.hosts.contains(where: { $0.install == .image }) {
            do {
                services.agent = try await deploys.prepareAgent(progress: Console.standardError.sink)
            } catch {
                throw CommandFailure("deploy agent: \(error)", hint: offline ? "run kiln serve --prepare first" : nil)
            }
            services.buildImage = { host in try await deploys.buildImage(for: host, logger: logger) }
        }
        if prepare {
            Console.standardError.write("kiln: boot files ready in \(tree)")
            if let agent = services.agent { Console.standardError.write("kiln: deploy agent ready: \(agent.kernel)") }
            // Images built from descriptions now rather than when their hosts first boot.
            let builder = try LabBootFiles(config: lab, services: services, logger: logger)
            for host in lab.hosts where host.install == .image && host.image == nil {
                do {
                    let image = try await builder.builtImage(for: host)
                    Console.standardError.write("kiln: \(host.name) deploys \(image)")
                } catch {
                    throw CommandFailure("\(host.name): \(error)")
                }
            }
            return
        }
        let extraFiles: [any BootFileProvider] = mirror.map { [$0] } ?? []
        let server: LabServer
        do {
            let root = try BootRoot(tree)
            server = try await LabServer(
                config: lab, root: root, services: services, extraFiles: extraFiles,
                tftpConfiguration: TFTPServerConfiguration(
                    root: root, limits: TFTPLimits(maximumWindowSize: maxWindowSize),
                    maximumTransfers: maxTransfers, maximumTransfersPerClient: maxTransfersPerClient),
                logger: logger)
        } catch let error as NetBootError {
            throw CommandFailure(error.description, hint: "ports below 1024 and DHCP need root")
        }
        for line in server.summary { Console.standardError.write("kiln: \(line)") }
        Console.standardError.write(
            "kiln: serving \(lab.hosts.count) hosts from \(lab.path) (DHCP \(lab.dhcp.mode.rawValue)), boot files in \(tree)"
        )
        try await server.run()
    }

    /// The boot loaders and installers from Debian packages: locked in FILE.lock, fetched into the cache,
    /// unpacked once.
    private func prepareBootFiles(_ lab: LabConfig, config: String) async throws -> String {
        do {
            let sources = try AptSources.load(
                listFile: "\(aptSources)/sources.list", partsDirectory: "\(aptSources)/sources.list.d")
            return try await BootFileTree.prepare(
                lockPath: config + ".lock", installers: Self.installers(lab), architectures: lab.architectures,
                cache: PackageCache(root: KilnCache.root()), sources: sources, offline: offline,
                progress: Console.standardError.sink)
        } catch let error as NetBootError {
            throw CommandFailure(error.message)
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// The Debian netboot installers (major version and architecture) the lab's hosts boot, so that
    /// they are fetched.
    static func installers(_ lab: LabConfig) -> [BootFileTree.Installer] {
        var installers: Set<BootFileTree.Installer> = []
        for host in lab.hosts where host.installer == nil && host.install == .installer {
            guard let description = host.description, let appliance = try? ApplianceLoader().load(description),
                appliance.os.name == .debian,
                let version = appliance.os.majorVersion
            else { continue }
            installers.insert(BootFileTree.Installer(version: version, architecture: host.arch))
        }
        return installers.sorted()
    }

    private func parse(_ text: String, option: String, defaultPort: Int) throws -> HostPort {
        do {
            return try HostPort(parsing: text, defaultPort: defaultPort)
        } catch let error as NetBootError {
            throw CommandFailure("\(option): \(error.message)", exitCode: 2)
        }
    }
}
