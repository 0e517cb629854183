/// A value read from a description, with where it was written.
struct Located<Value> {
    var value: Value
    var mark: SourceMark

    init(_ value: Value, _ mark: SourceMark) {
        self.value = value
        self.mark = mark
    }

    func map<Other>(_ transform: (Value) -> Other) -> Located<Other> { Located<Other>(transform(value), mark) }
}

/// Typed reads from `YAMLNode`s; every mismatch becomes a diagnostic and the value is skipped, so
/// that one pass reports every problem in a file.
struct NodeReader {
    let log: DiagnosticLog

    /// The entries of a map whose keys must be among `keys`. A null node reads as an empty map.
    func map(_ node: YAMLNode, _ what: String, keys: [String]?) -> [(key: Located<String>, value: YAMLNode)] {
        if node.isNull { return [] }
        guard case .mapping(let pairs) = node.kind else {
            log.error(node.mark, "\(what) must be a map, not \(node.kindName)")
            return []
        }
        var result: [(key: Located<String>, value: YAMLNode)] = []
        for pair in pairs {
            let key = pair.key.scalarText ?? ""
            if let keys, !keys.contains(key) {
                var message = "unknown key '\(key)' in \(what)"
                if let suggestion = closest(to: key, in: keys) { message += "; did you mean '\(suggestion)'?" }
                log.error(pair.key.mark, message)
                continue
            }
            result.append((Located(key, pair.key.mark), pair.value))
        }
        return result
    }

    /// A scalar as text. Numbers are kept as written (`9.10` stays `9.10`).
    func string(_ node: YAMLNode, _ what: String) -> Located<String>? {
        guard case .scalar(let text, _) = node.kind, !node.isNull else {
            log.error(node.mark, "\(what) must be text, not \(node.kindName)")
            return nil
        }
        return Located(text, node.mark)
    }

    func int(_ node: YAMLNode, _ what: String) -> Located<Int>? {
        guard case .scalar(let text, let plain) = node.kind, plain, let value = Int(text.replacingUnderscores) else {
            log.error(node.mark, "\(what) must be a whole number, not \(describe(node))")
            return nil
        }
        return Located(value, node.mark)
    }

    /// YAML 1.1 booleans, as BoxGrinder's Ruby read them: true/false, yes/no, on/off.
    func bool(_ node: YAMLNode, _ what: String) -> Located<Bool>? {
        if case .scalar(let text, let plain) = node.kind, plain {
            switch text.lowercased() {
            case "true", "yes", "on", "y": return Located(true, node.mark)
            case "false", "no", "off", "n": return Located(false, node.mark)
            default: break
            }
        }
        log.error(node.mark, "\(what) must be true or false, not \(describe(node))")
        return nil
    }

    /// The items of a list; a null node reads as an empty list.
    func list(_ node: YAMLNode, _ what: String) -> [YAMLNode] {
        if node.isNull { return [] }
        guard case .sequence(let items) = node.kind else {
            log.error(node.mark, "\(what) must be a list, not \(node.kindName)")
            return []
        }
        return items
    }

    func strings(_ node: YAMLNode, _ what: String) -> [Located<String>] {
        list(node, what).compactMap { string($0, "each item of \(what)") }
    }

    /// A size: a number is GB as BoxGrinder reads it (1 GB = 1024 MiB); text may carry a unit
    /// (`512MiB`, `4GiB`, `1TiB`, or SI `500MB`, `8GB`, `1TB`).
    func size(_ node: YAMLNode, _ what: String) -> Located<Size>? {
        guard case .scalar(let raw, _) = node.kind, !node.isNull else {
            log.error(node.mark, "\(what) must be a number of GB or text with a unit, not \(node.kindName)")
            return nil
        }
        let text = raw.trimmingSpaces
        let digits = text.prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" }
        let unit = text.dropFirst(digits.count).trimmingSpaces
        guard let number = Double(digits), number.isFinite else {
            log.error(node.mark, "\(what) '\(raw)' is not a size (write a number of GB, or e.g. 512MiB, 4GiB)")
            return nil
        }
        guard number > 0 else {
            log.error(node.mark, "\(what) must be greater than zero, not \(raw)")
            return nil
        }
        let bytesPerUnit: Double
        switch unit {
        case "", "G": bytesPerUnit = 1_073_741_824
        case "MiB", "M": bytesPerUnit = 1_048_576
        case "GiB": bytesPerUnit = 1_073_741_824
        case "TiB", "T": bytesPerUnit = 1_099_511_627_776
        case "MB": bytesPerUnit = 1_000_000
        case "GB": bytesPerUnit = 1_000_000_000
        case "TB": bytesPerUnit = 1_000_000_000_000
        default:
            var message = "\(what) has an unknown unit '\(unit)' (use MiB, GiB, TiB, MB, GB or TB)"
            if let suggestion = closest(to: unit, in: ["MiB", "GiB", "TiB", "MB", "GB", "TB"]) {
                message += "; did you mean '\(suggestion)'?"
            }
            log.error(node.mark, message)
            return nil
        }
        let mebibytes = (number * bytesPerUnit / 1_048_576).rounded(.up)
        guard mebibytes < 1e12 else {
            log.error(node.mark, "\(what) \(raw) is too large")
            return nil
        }
        return Located(Size(mebibytes: Int64(mebibytes)), node.mark)
    }

    func describe(_ node: YAMLNode) -> String {
        if case .scalar(let text, _) = node.kind, !node.isNull { return "'\(text)'" }
        return node.kindName
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    fileprivate var replacingUnderscores: String { filter { $0 != "_" } }
}

extension Substring {
    var trimmingSpaces: String { String(self).trimmingSpaces }
}
