import CKilnYaml

/// A position in a description file; lines and columns count from 1.
package struct SourceMark: Sendable, Hashable, CustomStringConvertible {
    package var file: String
    package var line: Int
    package var column: Int

    package init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    package var description: String { "\(file):\(line):\(column)" }
}

/// One node of a composed YAML document, with the position where it starts: what descriptions and
/// NetBoot's lab files are read from, so that every diagnostic names `file:line:column`.
///
/// Aliases are resolved while composing, so a node may appear in several places of the tree; the
/// composer bounds the expanded size of the whole document (see `YAMLComposer.Limits`).
package struct YAMLNode: Sendable {
    package enum Kind: Sendable {
        /// The text of a scalar, and whether it was written plain (unquoted: it may be a number,
        /// a boolean or null in YAML 1.1).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        /// Keys are always scalars; their order is the document's.
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    package var kind: Kind
    package var mark: SourceMark
    /// Nodes in this subtree, counting each alias expansion in full.
    var expandedSize: Int

    /// The text of a scalar; nil for a list or a map.
    package var scalarText: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    /// True for a plain `~`, `null`, `Null`, `NULL` or empty scalar.
    package var isNull: Bool {
        if case .scalar(let text, let plain) = kind, plain {
            return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
        }
        return false
    }

    /// "a scalar", "null", "a list" or "a map", for messages.
    package var kindName: String {
        switch kind {
        case .scalar: return isNull ? "null" : "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a map"
        }
    }
}

/// Composes YAML text into `YAMLNode`s from libyaml's event stream, so that alias expansion,
/// nesting depth and key types are checked while the tree is built: a "billion laughs" document
/// fails after `Limits.maxNodes` nodes instead of expanding.
package struct YAMLComposer: Sendable {
    package struct Limits: Sendable {
        /// Nodes in the expanded document (aliases count as their full subtree).
        package var maxNodes = 100_000
        /// Collections nested in one another.
        package var maxDepth = 64

        package init() {}
    }

    /// Malformed YAML, or a document beyond the limits, at a position.
    package struct Failure: Error, Sendable {
        package var mark: SourceMark
        /// Lowercase, no period.
        package var message: String
    }

    let file: String
    let limits: Limits

    /// - Parameter file: how marks name the file.
    package init(file: String, limits: Limits = Limits()) {
        self.file = file
        self.limits = limits
    }

    /// The first document of `text`, or nil when the text holds no document.
    /// - Throws: `Failure` for malformed YAML, a second document, an unknown alias, a key that is not
    ///   text, a duplicate key, or a document beyond `limits`.
    package func compose(_ text: String) throws(Failure) -> YAMLNode? {
        let (node, problems) = try composeReporting(text)
        if let first = problems.first { throw first }
        return node
    }

    /// As `compose`, but a duplicate key does not end the reading: the first value is kept and the
    /// duplicate is returned among `problems`, so that the file's other errors are found too.
    package func composeReporting(_ text: String) throws(Failure) -> (node: YAMLNode?, problems: [Failure]) {
        let bytes = Array(text.utf8)
        let session = ParserSession(bytes: bytes)
        var state = State()
        var event = try next(session)
        guard event.type == YAML_STREAM_START_EVENT else { throw failure(event, "expected the start of a stream") }
        event = try next(session)
        if event.type == YAML_STREAM_END_EVENT { return (nil, []) }
        guard event.type == YAML_DOCUMENT_START_EVENT else { throw failure(event, "expected a document") }
        let root = try composeNode(try next(session), session, &state, depth: 0)
        let end = try next(session)
        guard end.type == YAML_DOCUMENT_END_EVENT else { throw failure(end, "expected the end of the document") }
        let after = try next(session)
        if after.type == YAML_DOCUMENT_START_EVENT {
            throw failure(after, "a file holds one YAML document; found a second one")
        }
        return (root, state.problems)
    }

    private struct State {
        var anchors: [String: YAMLNode] = [:]
        var total = 0
        /// Errors that do not stop the reading (duplicate keys).
        var problems: [Failure] = []
    }

    private func composeNode(
        _ event: Event, _ session: ParserSession, _ state: inout State, depth: Int
    ) throws(Failure) -> YAMLNode {
        let mark = SourceMark(
            file: file, line: Int(event.raw.start_mark.line) + 1,
            column: Int(event.raw.start_mark.column) + 1)
        switch event.type {
        case YAML_ALIAS_EVENT:
            let name = Event.string(event.raw.data.alias.anchor) ?? ""
            guard var node = state.anchors[name] else { throw Failure(mark: mark, message: "unknown alias '*\(name)'") }
            try count(node.expandedSize, at: mark, &state)
            node.mark = mark
            return node
        case YAML_SCALAR_EVENT:
            let scalar = event.raw.data.scalar
            let text =
                scalar.value.map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self)
                } ?? ""
            let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.tag == nil
            try count(1, at: mark, &state)
            let node = YAMLNode(kind: .scalar(text, plain: plain), mark: mark, expandedSize: 1)
            if let anchor = Event.string(scalar.anchor) { state.anchors[anchor] = node }
            return node
        case YAML_SEQUENCE_START_EVENT:
            guard depth < limits.maxDepth else {
                throw Failure(mark: mark, message: "YAML nested deeper than \(limits.maxDepth) levels")
            }
            let anchor = Event.string(event.raw.data.sequence_start.anchor)
            try count(1, at: mark, &state)
            var items: [YAMLNode] = []
            var size = 1
            while true {
                let child = try next(session)
                if child.type == YAML_SEQUENCE_END_EVENT { break }
                let node = try composeNode(child, session, &state, depth: depth + 1)
                size += node.expandedSize
                items.append(node)
            }
            let node = YAMLNode(kind: .sequence(items), mark: mark, expandedSize: size)
            if let anchor { state.anchors[anchor] = node }
            return node
        case YAML_MAPPING_START_EVENT:
            guard depth < limits.maxDepth else {
                throw Failure(mark: mark, message: "YAML nested deeper than \(limits.maxDepth) levels")
            }
            let anchor = Event.string(event.raw.data.mapping_start.anchor)
            try count(1, at: mark, &state)
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            var firstSeen: [String: SourceMark] = [:]
            var merged: [(key: YAMLNode, value: YAMLNode)] = []
            var size = 1
            while true {
                let keyEvent = try next(session)
                if keyEvent.type == YAML_MAPPING_END_EVENT { break }
                let key = try composeNode(keyEvent, session, &state, depth: depth + 1)
                let value = try composeNode(try next(session), session, &state, depth: depth + 1)
                guard case .scalar(let keyText, let plain) = key.kind else {
                    throw Failure(mark: key.mark, message: "a key must be text, not \(key.kindName)")
                }
                size += key.expandedSize + value.expandedSize
                if plain && keyText == "<<" {
                    merged += try mergePairs(value)
                    continue
                }
                if let first = firstSeen[keyText] {
                    state.problems.append(
                        Failure(mark: key.mark, message: "duplicate key '\(keyText)' (first at line \(first.line))"))
                    continue
                }
                firstSeen[keyText] = key.mark
                pairs.append((key, value))
            }
            // YAML 1.1 merge keys: the mapping's own keys win over merged ones.
            for pair in merged {
                guard let text = pair.key.scalarText, firstSeen[text] == nil else { continue }
                firstSeen[text] = pair.key.mark
                pairs.append(pair)
            }
            let node = YAMLNode(kind: .mapping(pairs), mark: mark, expandedSize: size)
            if let anchor { state.anchors[anchor] = node }
            return node
        default:
            throw failure(event, "unexpected YAML event")
        }
    }

    private func mergePairs(_ value: YAMLNode) throws(Failure) -> [(key: YAMLNode, value: YAMLNode)] {
        switch value.kind {
        case .mapping(let pairs):
            return pairs
        case .sequence(let items):
            var result: [(key: YAMLNode, value: YAMLNode)] = []
            for item in items {
                guard case .mapping(let pairs) = item.kind else {
                    throw Failure(mark: item.mark, message: "a merge key ('<<') takes a map or a list of maps")
                }
                result += pairs
            }
            return result
        case .scalar:
            throw Failure(mark: value.mark, message: "a merge key ('<<') takes a map or a list of maps")
        }
    }

    private func count(_ nodes: Int, at mark: SourceMark, _ state: inout State) throws(Failure) {
        state.total += nodes
        if state.total > limits.maxNodes {
            throw Failure(
                mark: mark,
                message: "YAML document expands to more than \(limits.maxNodes) nodes (aliases nested too deeply?)")
        }
    }

    private func next(_ session: ParserSession) throws(Failure) -> Event {
        let event = Event()
        guard yaml_parser_parse(&session.parser, &event.raw) == 1 else {
            let parser = session.parser
            let problem = parser.problem.map { String(cString: $0) } ?? "malformed YAML"
            var message = "malformed YAML: \(problem)"
            if let context = parser.context.map({ String(cString: $0) }) { message += " \(context)" }
            let mark = SourceMark(
                file: file, line: Int(parser.problem_mark.line) + 1,
                column: Int(parser.problem_mark.column) + 1)
            throw Failure(mark: mark, message: message)
        }
        event.valid = true
        return event
    }

    private func failure(_ event: Event, _ message: String) -> Failure {
        Failure(
            mark: SourceMark(
                file: file, line: Int(event.raw.start_mark.line) + 1,
                column: Int(event.raw.start_mark.column) + 1), message: message)
    }
}

/// Owns a libyaml parser and the bytes it reads; both are freed together.
private final class ParserSession {
    var parser = yaml_parser_t()
    private let buffer: UnsafeMutableBufferPointer<UInt8>

    init(bytes: [UInt8]) {
        buffer = .allocate(capacity: max(bytes.count, 1))
        _ = buffer.initialize(from: bytes)
        yaml_parser_initialize(&parser)
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress, bytes.count)
    }

    deinit {
        yaml_parser_delete(&parser)
        buffer.deallocate()
    }
}

/// Owns one libyaml event.
private final class Event {
    var raw = yaml_event_t()
    var valid = false

    var type: yaml_event_type_t { raw.type }

    deinit { if valid { yaml_event_delete(&raw) } }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }
}
