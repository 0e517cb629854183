/// The `[Install]` section of a unit file, as `systemctl enable` reads it (drop-ins are not read).
struct UnitInstallSection: Equatable {
    var wantedBy: [String] = []
    var requiredBy: [String] = []
    var upheldBy: [String] = []
    var alias: [String] = []
    var also: [String] = []
    var defaultInstance: String?
    /// Whether the file has an `[Install]` section at all.
    var present = false

    /// Reads the section; `UpheldBy=` counts only when the systemd judged knows it (254 and later).
    init(_ text: String, knowsUpheldBy: Bool) {
        var section = ""
        var pending = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = pending + raw.trimmingWhitespace()
            pending = ""
            if line.hasSuffix("\\") {
                // A continued line: joined with a space, as systemd's config parser does.
                line.removeLast()
                pending = line + " "
                continue
            }
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                if section == "Install" { present = true }
                continue
            }
            guard section == "Install", let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingWhitespace()
            let value = line[line.index(after: equals)...].trimmingWhitespace()
            let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            func assign(_ list: inout [String]) { list = value.isEmpty ? [] : list + words }
            switch key {
            case "WantedBy": assign(&wantedBy)
            case "RequiredBy": assign(&requiredBy)
            case "UpheldBy" where knowsUpheldBy: assign(&upheldBy)
            case "Alias": assign(&alias)
            case "Also": assign(&also)
            case "DefaultInstance": defaultInstance = value.isEmpty ? nil : value
            default: continue
            }
        }
    }

    /// Whether `systemctl enable` has anything to do for this unit (its notice says so when not).
    func hasInstallInfo(isTemplate: Bool) -> Bool {
        !(wantedBy.isEmpty && requiredBy.isEmpty && upheldBy.isEmpty && alias.isEmpty && also.isEmpty
            && (!isTemplate || defaultInstance == nil))
    }
}

/// A unit name split as systemd splits it: `prefix@instance.suffix`.
struct UnitName: Hashable {
    static let suffixes: Set<String> = [
        "service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope",
    ]
    var prefix: String
    /// nil for a plain unit, "" for a template (`getty@.service`).
    var instance: String?
    var suffix: String

    /// `name`, with `.service` added when it has no unit suffix (as `systemctl` mangles names).
    init(mangling name: String) {
        var base = name
        var suffix = "service"
        if let dot = name.lastIndex(of: "."), Self.suffixes.contains(String(name[name.index(after: dot)...])) {
            base = String(name[..<dot])
            suffix = String(name[name.index(after: dot)...])
        }
        self.suffix = suffix
        if let at = base.firstIndex(of: "@") {
            prefix = String(base[..<at])
            instance = String(base[base.index(after: at)...])
        } else {
            prefix = base
            instance = nil
        }
    }

    var name: String { prefix + (instance.map { "@" + $0 } ?? "") + "." + suffix }
    var isTemplate: Bool { instance == "" }
    var isInstance: Bool { instance.map { !$0.isEmpty } ?? false }
    var template: UnitName { UnitName(prefix: prefix, instance: "", suffix: suffix) }
    func with(instance: String) -> UnitName { UnitName(prefix: prefix, instance: instance, suffix: suffix) }

    private init(prefix: String, instance: String?, suffix: String) {
        self.prefix = prefix
        self.instance = instance
        self.suffix = suffix
    }

    /// `[Install]`'s specifiers: %n %N %p %i %I %j %%; others are left as written.
    func expand(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var result = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "%", let specifier = iterator.next() else {
                result.append(character)
                continue
            }
            switch specifier {
            case "n": result += name
            case "N": result += prefix + (instance.map { "@" + $0 } ?? "")
            case "p": result += prefix
            case "i", "I": result += instance ?? ""
            case "j": result += prefix.split(separator: "-").last.map(String.init) ?? prefix
            case "%": result += "%"
            default: result += "%" + String(specifier)
            }
        }
        return result
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(
            drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }
                .reversed())
    }
}
