import Foundation
import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Merges layers (parents first, the description last) with BoxGrinder's rules, substitutes
/// variables, checks every value and makes the `Appliance`.
struct ApplianceBuilder {
    let layers: [Layer]
    let main: Layer
    /// `kiln build --arch`: wins over `hardware.arch`.
    let archOverride: Architecture?
    let log: DiagnosticLog
    let environment: [String: String]
    let maxExpansion: Int
    /// `files` may read outside the description's folder.
    let allowOutsideFiles: Bool
    /// A BoxGrinder description (`.appl`): read with BoxGrinder's defaults and its environment
    /// variables.
    let isBoxGrinder: Bool

    /// The target's architecture: the override, else `hardware.arch`, else x86_64.
    private var arch = Architecture.x86_64
    private var variables: [String: String] = [:]
    /// Names already reported as taken from the environment or left unresolved, so each is said once.
    private let reported = NameSet()

    init(
        layers: [Layer], main: Layer, archOverride: Architecture? = nil, log: DiagnosticLog,
        environment: [String: String] = [:],
        maxExpansion: Int = 1 << 16, allowOutsideFiles: Bool = false
    ) {
        self.layers = layers
        self.main = main
        self.archOverride = archOverride
        self.log = log
        self.environment = environment
        self.maxExpansion = maxExpansion
        self.allowOutsideFiles = allowOutsideFiles
        isBoxGrinder = (main.file as NSString).pathExtension == "appl"
    }

    // MARK: Merging

    /// The last value set by any layer: the child wins.
    private func last<T>(_ field: (Layer) -> Located<T>?) -> Located<T>? {
        layers.reversed().lazy.compactMap(field).first
    }

    /// The largest value set by any layer.
    private func largest(_ field: (Layer) -> Located<Int>?) -> Located<Int>? {
        layers.compactMap(field).max { $0.value < $1.value }
    }

    mutating func build() -> Appliance? {
        let name = main.name
        if name == nil { log.error(main.rootMark, "missing required key 'name'") }

        let osName = last(\.osName)
        let osVersion = last(\.osVersion)
        if osName == nil { log.error(main.rootMark, "missing required key 'os.name'") }
        if osVersion == nil { log.error(main.rootMark, "missing required key 'os.version'") }
        let os = osName.flatMap { located -> OSName? in
            guard let os = OSName(rawValue: located.value) else {
                var message =
                    "unknown os name '\(located.value)' (known: "
                    + OSName.allCases.map(\.rawValue).joined(separator: ", ") + ")"
                if let suggestion = closest(to: located.value, in: OSName.allCases.map(\.rawValue)) {
                    message += "; did you mean '\(suggestion)'?"
                }
                log.error(located.mark, message)
                return nil
            }
            return os
        }
        if let os, let version = osVersion { checkOSVersion(os, version) }

        arch = archOverride ?? buildArch() ?? .x86_64
        resolveVariables(os: osName?.value ?? "", version: osVersion?.value ?? "")
        let applianceName = name.map(substitute)
        if let applianceName { check(applianceName, "name", Validate.isApplianceName) }

        var appliance = Appliance(
            name: applianceName?.value ?? "",
            os: OperatingSystem(name: os ?? .debian, version: osVersion?.value ?? ""),
            sourcePath: main.file)
        appliance.summary = last(\.summary).map(substitute).flatMap { summary in
            check(summary, "summary", Validate.isOneLine) ? summary.value : nil
        }
        appliance.version = nonNegative(last(\.version), "version") ?? 1
        appliance.release = nonNegative(last(\.release), "release") ?? 0
        appliance.os.passwordHash = rootPasswordHash(applianceName: appliance.name)
        if let value = last(\.locale).map(substitute), check(value, "os.locale", Validate.isLocale) {
            appliance.os.locale = value.value
        }
        if let value = last(\.timezone).map(substitute), check(value, "os.timezone", Validate.isTimezone) {
            appliance.os.timezone = value.value
        }
        if let value = last(\.keyboard).map(substitute), check(value, "os.keyboard", Validate.isKeyboard) {
            appliance.os.keyboard = value.value
        }
        appliance.hardware = buildHardware()
        appliance.packages = buildPackages(family: os?.family)
        appliance.packageOptions = buildPackageOptions(family: os?.family)
        appliance.repos = buildRepos()
        appliance.defaultRepos = !layers.contains { $0.defaultRepos?.value == false }
        appliance.files = buildFiles()
        appliance.post = buildPost()
        appliance.variables = variables.filter { !Self.builtins.contains($0.key) }
        appliance.hostname = last(\.hostname).map(substitute).flatMap { host in
            check(host, "hostname", Validate.isHostname) ? host.value : nil
        }
        appliance.users = buildUsers(applianceName: appliance.name)
        appliance.services = buildServices()
        appliance.network = buildNetwork()
        appliance.kernelArgs = last(\.kernelArgs).map(substitute).flatMap { args in
            check(args, "kernel_args", Validate.isKernelArgs) ? args.value : nil
        }
        if let console = last(\.console) {
            appliance.console = console.value.flatMap { text in buildConsole(Located(text, console.mark)) }
        } else {
            appliance.console = SerialConsole.defaultValue(for: arch)
        }
        if let expect = last(\.testExpect).map(substitute) {
            if expect.value.isEmpty { log.error(expect.mark, "test.expect must not be empty") }
            appliance.test.expect = expect.value
        }
        if let timeout = last(\.testTimeout) {
            if timeout.value <= 0 { log.error(timeout.mark, "test.timeout must be greater than zero") }
            appliance.test.timeout = timeout.value
        }
        buildSecurity(&appliance, family: os?.family)
        appliance.parents = layers.dropLast().reversed().compactMap { $0.name?.value }
        if let os, os.family == .debian {
            for mirrorlist in layers.flatMap(\.repos).compactMap(\.mirrorlist) {
                log.error(mirrorlist.mark, "mirrorlist is for RPM targets; a Debian archive needs a baseurl")
            }
        }
        return log.isEmpty ? appliance : nil
    }

    // MARK: Variables

    static let builtins: Set<String> = ["OS_NAME", "OS_VERSION", "ARCH", "BASE_ARCH"]
    /// Variables referring to variables referring to ...: deeper than this is an error.
    static let maxVariableDepth = 32

    private mutating func resolveVariables(os: String, version: String) {
        var raw: [String: Located<String>] = [:]
        for layer in layers {
            for (name, value) in layer.variables {
                if !Validate.isVariableName(name.value) {
                    log.error(name.mark, "variable name '\(name.value)' must be letters, digits and '_'")
                    continue
                }
                if Self.builtins.contains(name.value) {
                    log.error(name.mark, "variable '\(name.value)' is built in and cannot be set")
                    continue
                }
                raw[name.value] = value
            }
        }
        // BoxGrinder's BASE_ARCH is ARCH but for the 32-bit x86 names (i386 for all of them), which
        // kiln does not build: here it equals ARCH.
        var resolved: [String: String] = [
            "OS_NAME": os, "OS_VERSION": version, "ARCH": arch.rawValue, "BASE_ARCH": arch.rawValue,
        ]
        let limit = maxExpansion
        let log = self.log
        func resolve(_ name: String, _ stack: [String]) -> String? {
            if let done = resolved[name] { return done }
            guard let value = raw[name] else { return nil }
            if stack.contains(name) {
                log.error(value.mark, "variable '\(name)' refers to itself through \(stack.joined(separator: " -> "))")
                return value.value
            }
            if stack.count >= Self.maxVariableDepth {
                log.error(
                    value.mark,
                    "variable '\(name)' is reached through more than \(Self.maxVariableDepth) variables "
                        + "(\(stack.prefix(3).joined(separator: " -> ")) -> ...)")
                resolved[name] = value.value
                return value.value
            }
            let expansion = Self.expand(value.value, limit: limit) { resolve($0, stack + [name]) }
            if expansion.overflow {
                log.error(value.mark, "variable '\(name)' expands to more than \(limit) characters")
                resolved[name] = value.value
                return value.value
            }
            resolved[name] = expansion.text
            return expansion.text
        }
        for name in raw.keys.sorted() { _ = resolve(name, []) }
        variables = resolved
    }

    /// `#NAME#` references in `text`.
    static func references(in text: String) -> [String] {
        var names: [String] = []
        _ = expand(text, limit: Int.max) { name in
            names.append(name)
            return nil
        }
        return names
    }

    /// `text` with each `#NAME#` that `lookup` knows replaced, in one pass; stops once the result
    /// would be longer than `limit` characters.
    static func expand(_ text: String, limit: Int, lookup: (String) -> String?) -> (
        text: String, overflow: Bool, unresolved: [String]
    ) {
        var result = ""
        var count = 0
        var unresolved: [String] = []
        var rest = Substring(text)
        func append(_ piece: Substring) -> Bool {
            count += piece.count
            if count > limit { return false }
            result += piece
            return true
        }
        while let open = rest.firstIndex(of: "#") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "#") else { break }
            let name = String(after[..<close])
            guard !name.isEmpty, Validate.isVariableName(name) else {
                guard append(rest[..<after.startIndex]) else { return (result, true, unresolved) }
                rest = after
                continue
            }
            guard append(rest[..<open]) else { return (result, true, unresolved) }
            if let value = lookup(name) {
                guard append(Substring(value)) else { return (result, true, unresolved) }
            } else {
                unresolved.append(name)
                guard append(rest[open...close]) else { return (result, true, unresolved) }
            }
            rest = after[after.index(after: close)...]
        }
        guard append(rest) else { return (result, true, unresolved) }
        return (result, false, unresolved)
    }

    /// A variable's value: the description's (or a built-in), else for a BoxGrinder description
    /// the environment's, with a warning the first time.
    private func value(of name: String, at mark: SourceMark) -> String? {
        if let value = variables[name] { return value }
        guard isBoxGrinder, let value = environment[name] else { return nil }
        if reported.insert("env \(name)") {
            log.warning(mark, "variable '#\(name)#' is not defined here; taken from the environment, as BoxGrinder did")
        }
        return value
    }

    private func substituteReporting(_ located: Located<String>) -> (Located<String>, unresolved: [String]) {
        let expansion = Self.expand(located.value, limit: maxExpansion) { value(of: $0, at: located.mark) }
        if expansion.overflow {
            log.error(located.mark, "this value expands to more than \(maxExpansion) characters")
            return (located, [])
        }
        return (Located(expansion.text, located.mark), expansion.unresolved)
    }

    /// Substitutes what is known; a BoxGrinder description is warned about what is not (a post
    /// command keeps it as written).
    private func substitute(_ located: Located<String>) -> Located<String> {
        let (result, unresolved) = substituteReporting(located)
        if isBoxGrinder {
            for name in unresolved where reported.insert("unresolved \(name) \(located.mark)") {
                log.warning(
                    located.mark, "'#\(name)#' is neither a variable nor set in the environment; kept as written")
            }
        }
        return result
    }

    /// Substitutes and reports references to undefined variables (all fields but `post`).
    private func substituteStrict(_ located: Located<String>, _ what: String) -> Located<String> {
        let (result, unresolved) = substituteReporting(located)
        // Also what a variable's own value left unresolved.
        var names = unresolved
        for name in Self.references(in: result.value) where !names.contains(name) { names.append(name) }
        for name in names where name.uppercased() == name || isBoxGrinder {
            log.error(located.mark, "\(what) uses undefined variable '#\(name)#'")
        }
        return result
    }

    // MARK: Checks

    @discardableResult
    private func check(_ value: Located<String>, _ what: String, _ rule: (String) -> Bool) -> Bool {
        if rule(value.value) { return true }
        log.error(value.mark, "\(what) '\(Validate.shown(value.value))' \(Validate.explanation(what))")
        return false
    }

    private func nonNegative(_ value: Located<Int>?, _ what: String) -> Int? {
        guard let value else { return nil }
        if value.value < 0 { log.error(value.mark, "\(what) must not be negative") }
        return value.value
    }

    private func checkOSVersion(_ os: OSName, _ version: Located<String>) {
        guard !OperatingSystem(name: os, version: version.value).isKnownRelease else { return }
        if os.family == .debian {
            let example = os == .debian ? "12 or bookworm" : "\"22.04\" or jammy"
            log.error(
                version.mark,
                "unknown \(os.rawValue) release '\(Validate.shown(version.value))' (give a release number or a "
                    + "code name, like \(example))")
        } else if let range = OperatingSystem.knownMajorVersions(os) {
            log.error(
                version.mark,
                "unknown \(os.rawValue) release '\(Validate.shown(version.value))' (kiln knows \(os.rawValue) "
                    + "\(range.lowerBound) to \(range.upperBound), like \(range.upperBound - 1) or "
                    + "\(range.upperBound - 1).1)")
        }
    }

    private func rootPasswordHash(applianceName: String) -> String? {
        // The layer that last set either key decides.
        for layer in layers.reversed() {
            if let hash = layer.osPasswordHash {
                if layer.osPassword != nil {
                    log.error(hash.mark, "give os.password or os.password_hash, not both")
                }
                guard PasswordHash.isCryptHash(hash.value) else {
                    log.error(hash.mark, "os.password_hash is not a crypt hash (expected $6$SALT$HASH)")
                    return nil
                }
                return hash.value
            }
            if let password = layer.osPassword {
                return hashPassword(password, context: "\(applianceName)\u{0}root")
            }
        }
        // BoxGrinder's template gave root this password; an appliance without one could not be
        // logged into at all.
        guard isBoxGrinder else { return nil }
        log.warning(
            last(\.osName)?.mark ?? main.rootMark,
            "no os.password: root gets BoxGrinder's default password '\(Self.boxGrinderPassword)'; set os.password "
                + "or os.password_hash to change it")
        return PasswordHash.sha512(Self.boxGrinderPassword, context: "\(applianceName)\u{0}root")
    }

    static let boxGrinderPassword = "boxgrinder"

    private func hashPassword(_ password: Located<String>, context: String) -> String? {
        guard !password.value.isEmpty else {
            log.error(password.mark, "password must not be empty")
            return nil
        }
        guard let hash = PasswordHash.sha512(password.value, context: context) else {
            log.error(password.mark, "libcrypt could not hash the password")
            return nil
        }
        return hash
    }

    // MARK: Sections

    /// `hardware.arch` as the last layer that sets it wrote it; nil (and an error) when it names no
    /// architecture kiln builds.
    private func buildArch() -> Architecture? {
        guard let written = last(\.arch) else { return nil }
        if let value = Architecture(rawValue: written.value) { return value }
        var message = "hardware.arch '\(Validate.shown(written.value))' must be \(Architecture.names)"
        if let debian = Architecture(debianName: written.value) {
            message += " ('\(written.value)' is Debian's name for \(debian.rawValue))"
        }
        log.error(written.mark, message)
        return nil
    }

    private func buildHardware() -> Hardware {
        var hardware = Hardware()
        if let cpus = largest(\.cpus) {
            if cpus.value < 1 || cpus.value > 1024 { log.error(cpus.mark, "hardware.cpus must be between 1 and 1024") }
            hardware.cpus = cpus.value
        }
        for layer in layers {
            if let memory = layer.memory, memory.value < 1 {
                log.error(memory.mark, "hardware.memory must be greater than zero")
            }
        }
        if let memory = largest(\.memory) { hardware.memory = memory.value }
        hardware.arch = arch
        hardware.firmware = BootFirmware.defaultValue(for: arch)
        if let firmware = last(\.firmware) {
            if let value = BootFirmware(rawValue: firmware.value) {
                if arch == .aarch64 && value != .uefi {
                    log.error(
                        firmware.mark,
                        "hardware.firmware '\(value.rawValue)' cannot boot aarch64: arm64 machines boot with UEFI "
                            + "only (leave firmware out, or write uefi)")
                }
                hardware.firmware = value
            } else {
                log.error(firmware.mark, "hardware.firmware '\(firmware.value)' must be bios, uefi or hybrid")
            }
        }
        hardware.diskSize = layers.compactMap(\.diskSize).max { $0.value < $1.value }?.value
        if let byInstaller = last(\.partitionsByInstaller) {
            hardware.partitionsByInstaller = true
            if let listed = layers.flatMap(\.partitions).first {
                log.error(
                    byInstaller.mark,
                    "partitions: installer cannot be merged with the partitions listed at \(listed.mountPoint.mark)")
            }
        }

        var order: [String] = []
        var merged: [String: Layer.PartitionLayer] = [:]
        for layer in layers {
            for partition in layer.partitions {
                let mount = substitute(partition.mountPoint)
                guard var existing = merged[mount.value] else {
                    order.append(mount.value)
                    var copy = partition
                    copy.mountPoint = mount
                    merged[mount.value] = copy
                    continue
                }
                if let size = partition.size, existing.size.map({ $0.value < size.value }) ?? true {
                    existing.size = size
                }
                if let type = partition.type {
                    if existing.type?.value != type.value { existing.options = nil }
                    existing.type = type
                }
                existing.sizeWritten = existing.sizeWritten || partition.sizeWritten
                existing.options = partition.options ?? existing.options
                existing.passphrase = partition.passphrase ?? existing.passphrase
                existing.grow = partition.grow ?? existing.grow
                merged[mount.value] = existing
            }
        }
        guard !order.isEmpty else { return hardware }
        var partitions: [Partition] = []
        var growing: String?
        for mount in order {
            guard let layer = merged[mount] else { continue }
            let what = "partition '\(mount)'"
            guard check(layer.mountPoint, "mount point", Validate.isMountPoint) else { continue }
            let grow = layer.grow?.value ?? false
            if grow, let mark = layer.grow?.mark, let first = growing {
                log.error(mark, "only one partition can grow; \(first) grows already")
            }
            if grow { growing = what }
            let size = layer.size?.value ?? (grow ? Size(mebibytes: 1024) : nil)
            if size == nil && !layer.sizeWritten { log.error(layer.mountPoint.mark, "\(what) needs a size") }
            var type: FilesystemType = mount == "swap" ? .swap : mount == "/boot/efi" ? .vfat : .ext4
            if let typeName = layer.type {
                if let value = FilesystemType(rawValue: typeName.value) {
                    type = value
                } else {
                    var message =
                        "filesystem type '\(typeName.value)' of \(what) is not one of "
                        + FilesystemType.allCases.map(\.rawValue).joined(separator: ", ")
                    if let suggestion = closest(to: typeName.value, in: FilesystemType.allCases.map(\.rawValue)) {
                        message += "; did you mean '\(suggestion)'?"
                    }
                    log.error(typeName.mark, message)
                }
            }
            if (mount == "swap") != (type == .swap) {
                log.error(
                    layer.type?.mark ?? layer.mountPoint.mark,
                    "swap needs type swap, and type swap needs the mount point 'swap'")
            }
            if let options = layer.options { check(options, "mount options", Validate.isMountOptions) }
            if let passphrase = layer.passphrase { check(passphrase, "passphrase", Validate.isPassphrase) }
            partitions.append(
                Partition(
                    mountPoint: mount, size: size ?? Size(mebibytes: 1), type: type, options: layer.options?.value,
                    passphrase: layer.passphrase?.value, grow: grow))
        }
        if !partitions.contains(where: { $0.mountPoint == "/" }) {
            let mark = layers.flatMap(\.partitions).first?.mountPoint.mark ?? main.rootMark
            log.error(mark, "hardware.partitions has no root partition '/'")
        }
        // The growing partition takes the end of the disk, wherever it was written.
        hardware.partitions = partitions.filter { !$0.grow } + partitions.filter(\.grow)
        return hardware
    }

    private func buildPackages(family: OSName.Family?) -> [String] {
        var packages: [String] = []
        for located in layers.flatMap(\.packages) {
            let package = substituteStrict(located, "package")
            guard check(package, "package name", Validate.isPackage) else { continue }
            if family == .debian,
                package.value.hasPrefix("@") || package.value.hasPrefix("-") || package.value.contains("*")
            {
                log.error(
                    package.mark, "package '\(package.value)': groups, exclusions and wildcards are for RPM targets")
                continue
            }
            packages.append(package.value)
        }
        return packages
    }

    /// The last layer that writes `package_options` sets all of them.
    private func buildPackageOptions(family: OSName.Family?) -> PackageOptions {
        var options = PackageOptions()
        guard let written = layers.reversed().lazy.compactMap(\.packageOptions).first else { return options }
        for located in written {
            let parts = located.value.split(separator: "=", maxSplits: 1).map(String.init)
            switch parts[0] {
            case "excludedocs" where parts.count == 1: options.excludeDocs = true
            case "nocore" where parts.count == 1: options.noCore = true
            case "exclude-weakdeps" where parts.count == 1: options.excludeWeakDeps = true
            case "ignoremissing" where parts.count == 1: options.ignoreMissing = true
            case "inst-langs" where parts.count == 2 && Validate.isLanguageList(parts[1]):
                options.instLangs = parts[1]
            default:
                log.error(
                    located.mark,
                    "package option '\(Validate.shown(located.value))' is not one of excludedocs, nocore, "
                        + "exclude-weakdeps, ignoremissing, inst-langs=LANG[,LANG]")
            }
            if family == .debian {
                log.warning(located.mark, "package_options are written for RPM targets only; ignored here")
            }
        }
        return options
    }

    private func buildRepos() -> [Repository] {
        var repos: [Repository] = []
        var names: [String: SourceMark] = [:]
        for layer in layers {
            for repo in layer.repos {
                guard let name = repo.name.map({ substituteStrict($0, "repo name") }) else {
                    log.error(repo.mark, "a repo needs a name")
                    continue
                }
                check(name, "repo name", Validate.isRepoName)
                if let first = names[name.value] {
                    log.error(name.mark, "repo '\(name.value)' is listed twice (first at \(first))")
                }
                names[name.value] = name.mark
                let baseurl = repo.baseurl.map { substituteStrict($0, "baseurl") }
                let mirrorlist = repo.mirrorlist.map { substituteStrict($0, "mirrorlist") }
                if (baseurl == nil) == (mirrorlist == nil) {
                    log.error(repo.mark, "repo '\(name.value)' needs exactly one of baseurl and mirrorlist")
                }
                if let baseurl { check(baseurl, "baseurl", Validate.isURL) }
                if let mirrorlist { check(mirrorlist, "mirrorlist", Validate.isURL) }
                let suite = repo.suite.map { substituteStrict($0, "suite") }
                if let suite { check(suite, "suite", Validate.isSuite) }
                let components = (repo.components ?? []).map { substituteStrict($0, "component") }
                for component in components { check(component, "component", Validate.isComponent) }
                if let cost = repo.cost, cost.value < 0 { log.error(cost.mark, "cost must not be negative") }
                var key: String?
                if let located = repo.key.map({ substituteStrict($0, "key") }) {
                    if Validate.isURL(located.value) {
                        key = located.value
                    } else if check(located, "key", Validate.isSafePath) {
                        key = resolvePath(located.value, relativeTo: layer.file)
                        if let key, !FileManager.default.fileExists(atPath: key) {
                            log.error(located.mark, "key file '\(located.value)' not found")
                        }
                    }
                }
                repos.append(
                    Repository(
                        name: name.value, baseurl: baseurl?.value, mirrorlist: mirrorlist?.value,
                        ephemeral: repo.ephemeral?.value ?? false, cost: repo.cost?.value, suite: suite?.value,
                        components: components.map(\.value), key: key))
            }
        }
        return repos
    }

    private func buildFiles() -> [FileGroup] {
        var groups: [FileGroup] = []
        for layer in layers {
            for (target, sources) in layer.files {
                let directory = substituteStrict(target, "files target")
                guard check(directory, "files target", Validate.isAbsolutePath) else { continue }
                var resolved: [FileSource] = []
                for source in sources.map({ substituteStrict($0, "file") }) {
                    if Validate.isURL(source.value) {
                        resolved.append(.url(source.value))
                        continue
                    }
                    guard check(source, "file", Validate.isFileEntry) else { continue }
                    resolved += localFiles(source, besides: layer.file)
                }
                groups.append(FileGroup(target: directory.value, sources: resolved))
            }
        }
        return groups
    }

    /// The files one `files` entry names, each with the path it keeps under the target: a file, a
    /// directory (every file in it, recursively) or a shell glob, relative to the description.
    /// Outside the description's folder (an absolute path, `..`, a symbolic link leading out) only
    /// with `allowOutsideFiles`, with a warning; such files keep only their own names.
    private func localFiles(_ source: Located<String>, besides file: String) -> [FileSource] {
        let base = ((file as NSString).deletingLastPathComponent as NSString).resolvingSymlinksInPath
        let pattern = Self.lexicalPath(source.value, relativeTo: base)
        let isGlob = source.value.contains { "*?[".contains($0) }
        let matches = isGlob ? Self.glob(pattern) : [pattern]
        if matches.isEmpty {
            log.error(source.mark, "file pattern '\(source.value)' matches no file (looked in \(base))")
            return []
        }
        var files: [FileSource] = []
        var warnedOutside = false
        for match in matches {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: match, isDirectory: &isDirectory) else {
                log.error(source.mark, "file '\(source.value)' not found (looked at \(match))")
                continue
            }
            var members: [(path: String, relative: String)] = [(match, "")]
            if isDirectory.boolValue {
                let names = (FileManager.default.enumerator(atPath: match)?.allObjects as? [String] ?? []).sorted()
                members = names.compactMap { name in
                    let path = (match as NSString).appendingPathComponent(name)
                    var inner: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: path, isDirectory: &inner), !inner.boolValue else {
                        return nil
                    }
                    return (path, name)
                }
                if members.isEmpty { log.warning(source.mark, "directory '\(source.value)' holds no files") }
            }
            for member in members {
                let real = (member.path as NSString).resolvingSymlinksInPath
                let inside = real.hasPrefix(base + "/")
                if !inside {
                    guard allowOutsideFiles else {
                        log.error(
                            source.mark,
                            "file '\(Validate.shown(source.value))' reads \(real), outside the description's folder "
                                + "\(base); run kiln with KILN_ALLOW_OUTSIDE_FILES=1 to allow it")
                        return files
                    }
                    if !warnedOutside {
                        log.warning(
                            source.mark,
                            "file '\(Validate.shown(source.value))' reads \(real), outside the description's folder "
                                + "(allowed by KILN_ALLOW_OUTSIDE_FILES)")
                        warnedOutside = true
                    }
                }
                let matchRelative: String
                if inside, match.hasPrefix(base + "/") {
                    matchRelative = String(match.dropFirst(base.count + 1))
                } else {
                    matchRelative = (match as NSString).lastPathComponent
                }
                let destination =
                    member.relative.isEmpty
                    ? matchRelative : (matchRelative as NSString).appendingPathComponent(member.relative)
                files.append(.local(member.path, destination: destination))
            }
        }
        return files
    }

    /// `path` made absolute against `directory`, with `.` and `..` taken away by name only: a
    /// symbolic link keeps its own name.
    static func lexicalPath(_ path: String, relativeTo directory: String) -> String {
        var parts: [Substring] = path.hasPrefix("/") ? [] : directory.split(separator: "/")
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
            } else {
                parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The paths a shell glob matches, sorted; only `*`, `?` and `[...]`, no braces or `~`.
    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }.sorted()
    }

    private func buildPost() -> PostCommands {
        var post = PostCommands()
        for layer in layers {
            for (platform, commands) in layer.post {
                var list: [String] = []
                for located in commands {
                    let command = substitute(located)
                    if command.value.trimmingSpaces.isEmpty {
                        log.error(command.mark, "a post command must not be empty")
                    } else if let line = command.value.split(separator: "\n").first(where: Self.isKickstartSection) {
                        log.error(
                            command.mark,
                            "a post command cannot hold the line '\(line.trimmingSpaces)' "
                                + "(kickstart would read it as a section)"
                        )
                    } else if command.value.split(separator: "\n").contains(where: {
                        $0.trimmingSpaces == "KILN_POST_END"
                    }) {
                        log.error(
                            command.mark, "a post command cannot hold the line 'KILN_POST_END' (kiln's delimiter)")
                    } else if command.value.contains("\u{0}") {
                        log.error(command.mark, "a post command must not contain NUL")
                    } else {
                        list.append(command.value)
                    }
                }
                if platform.value == "base" {
                    post.base += list
                } else if let value = Platform(rawValue: platform.value) {
                    post.platforms[value, default: []] += list
                }
            }
        }
        return post
    }

    /// `%end`, `%packages`, ...: lines that would end or open a kickstart section.
    static func isKickstartSection(_ line: Substring) -> Bool {
        let trimmed = line.trimmingSpaces
        guard trimmed.hasPrefix("%") else { return false }
        let word = trimmed.dropFirst().prefix { $0.isLetter || $0 == "-" }
        return [
            "end", "post", "pre", "pre-install", "packages", "onerror", "traceback", "addon", "anaconda", "include",
            "ksappend",
        ].contains(String(word))
    }

    private func buildUsers(applianceName: String) -> [User] {
        var users: [User] = []
        for layer in layers {
            for entry in layer.users {
                guard let name = entry.name.map(substitute) else {
                    log.error(entry.mark, "a user needs a name")
                    continue
                }
                check(name, "user name", Validate.isUserName)
                if name.value == "root" { log.error(name.mark, "user 'root' is set by os.password, not users") }
                let sudo = entry.sudo?.value ?? "false"
                var user = User(name: name.value, sudo: sudo != "false", sudoAsksPassword: sudo == "password")
                for group in entry.groups.map(substitute) where check(group, "group", Validate.isUserName) {
                    user.groups.append(group.value)
                }
                if let hash = entry.passwordHash {
                    if entry.password != nil { log.error(hash.mark, "give password or password_hash, not both") }
                    if PasswordHash.isCryptHash(hash.value) {
                        user.passwordHash = hash.value
                    } else {
                        log.error(hash.mark, "password_hash is not a crypt hash (expected $6$SALT$HASH)")
                    }
                } else if let password = entry.password {
                    user.passwordHash = hashPassword(password, context: "\(applianceName)\u{0}\(name.value)")
                }
                for key in entry.sshKeys.map(substitute) where check(key, "ssh key", Validate.isSSHKey) {
                    user.sshKeys.append(key.value)
                }
                if let index = users.firstIndex(where: { $0.name == user.name }) {
                    users[index] = user
                } else {
                    users.append(user)
                }
            }
        }
        return users
    }

    /// SELinux, the firewall and the end action. A BoxGrinder description starts from BoxGrinder's
    /// template: permissive SELinux and no firewall.
    private func buildSecurity(_ appliance: inout Appliance, family: OSName.Family?) {
        appliance.selinux = isBoxGrinder ? .permissive : .enforcing
        if let mode = last(\.selinux).map(substitute) {
            if let value = SELinuxMode(rawValue: mode.value) {
                appliance.selinux = value
            } else {
                log.error(
                    mode.mark, "selinux '\(Validate.shown(mode.value))' must be enforcing, permissive or disabled")
            }
            if family == .debian { log.warning(mode.mark, "selinux is written for RPM targets only; ignored here") }
        }
        var firewall = isBoxGrinder ? Firewall.boxGrinder : Firewall.default
        if let layer = layers.last(where: { $0.firewallMark != nil }), let mark = layer.firewallMark {
            // The layer that writes `firewall` sets all of it; on, SSH only, unless it says otherwise.
            firewall = Firewall(enabled: layer.firewallEnabled?.value ?? true)
            if layer.firewallServices == nil && firewall.enabled { firewall.services = ["ssh"] }
            for service in (layer.firewallServices ?? []).map(substitute)
            where check(service, "firewall service", Validate.isFirewallService) {
                firewall.services.append(service.value)
            }
            for port in (layer.firewallPorts ?? []).map(substitute) where check(port, "firewall port", Validate.isPort)
            {
                firewall.ports.append(port.value)
            }
            if !firewall.enabled && !(firewall.services.isEmpty && firewall.ports.isEmpty) {
                log.error(mark, "firewall has services or ports but enabled: false")
            }
            if family == .debian { log.warning(mark, "firewall is written for RPM targets only; ignored here") }
        }
        appliance.firewall = firewall
        if let end = last(\.end).map(substitute) {
            if let value = EndAction(rawValue: end.value) {
                appliance.end = value
            } else {
                log.error(end.mark, "end '\(Validate.shown(end.value))' must be reboot, poweroff, halt or shutdown")
            }
        }
    }

    private func buildServices() -> Services {
        var services = Services()
        for located in layers.flatMap(\.servicesEnable).map(substitute)
        where check(located, "service", Validate.isService) && !services.enable.contains(located.value) {
            services.enable.append(located.value)
        }
        for located in layers.flatMap(\.servicesDisable).map(substitute)
        where check(located, "service", Validate.isService) && !services.disable.contains(located.value) {
            if services.enable.contains(located.value) {
                log.error(located.mark, "service '\(located.value)' is both enabled and disabled")
            }
            services.disable.append(located.value)
        }
        return services
    }

    private func buildNetwork() -> [NetworkInterface] {
        guard let entries = layers.reversed().lazy.compactMap(\.network).first else { return [] }
        var interfaces: [NetworkInterface] = []
        for entry in entries {
            guard let name = entry.interface.map(substitute) else {
                log.error(entry.mark, "a network entry needs an interface (a name, or 'default')")
                continue
            }
            check(name, "interface", Validate.isInterface)
            if interfaces.contains(where: { $0.interface == name.value }) {
                log.error(name.mark, "interface '\(name.value)' is listed twice")
            }
            guard let address = entry.address.map(substitute) else {
                if let dhcp = entry.dhcp, !dhcp.value {
                    log.error(dhcp.mark, "interface '\(name.value)' has dhcp: false but no address")
                }
                for item in [entry.gateway].compactMap({ $0 }) + entry.dns {
                    log.error(item.mark, "gateway and dns need a static address")
                }
                interfaces.append(NetworkInterface(interface: name.value))
                continue
            }
            if let dhcp = entry.dhcp, dhcp.value { log.error(dhcp.mark, "give dhcp: true or an address, not both") }
            let parts = address.value.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, Validate.isIPv4(String(parts[0])), let prefix = Int(parts[1]),
                (0...32).contains(prefix)
            else {
                log.error(
                    address.mark,
                    "address '\(Validate.shown(address.value))' must be IPv4 with a prefix length, like 192.0.2.17/24")
                continue
            }
            var config = StaticAddress(address: String(parts[0]), prefixLength: prefix)
            if let gateway = entry.gateway.map(substitute), check(gateway, "gateway", Validate.isIPv4) {
                config.gateway = gateway.value
            }
            for server in entry.dns.map(substitute) where check(server, "dns server", Validate.isIPAddress) {
                config.dns.append(server.value)
            }
            interfaces.append(NetworkInterface(interface: name.value, staticAddress: config))
        }
        return interfaces
    }

    private func buildConsole(_ located: Located<String>) -> SerialConsole? {
        let parts = located.value.split(separator: ",", omittingEmptySubsequences: false)
        let device = String(parts[0])
        let speedText = parts.count > 1 ? String(parts[1]).prefix { $0.isNumber } : "115200"
        guard parts.count <= 2, Validate.isConsoleDevice(device), let speed = Int(speedText), speed > 0 else {
            log.error(located.mark, "console '\(Validate.shown(located.value))' must be like ttyS0,115200 (or false)")
            return nil
        }
        return SerialConsole(device: device, speed: speed)
    }

    private func resolvePath(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        let dir = (file as NSString).deletingLastPathComponent
        return ((dir as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }
}

/// Names said once already; a class so that the builder's non-mutating helpers can record them.
private final class NameSet {
    private var names: Set<String> = []

    /// True the first time `name` is inserted.
    func insert(_ name: String) -> Bool { names.insert(name).inserted }
}
