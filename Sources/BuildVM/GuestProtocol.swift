/// One message from the builder guest: a console line `KILN:<seq>:<event>:<payload>`.
package struct GuestEvent: Sendable, Equatable {
    /// 1, 2, 3, ... without gaps within one boot.
    package var sequence: Int
    /// "init", "modules", "job", "step", "progress", "info", "result", "error", "exit", or a job's own.
    package var name: String
    /// The rest of the line: text for `step`, `info`, `error` and `result`, a record for the others.
    package var payload: String

    package init(sequence: Int, name: String, payload: String) {
        self.sequence = sequence
        self.name = name
        self.payload = payload
    }

    /// The payload as a record (`name=value` fields).
    package var record: GuestRecord { GuestRecord(payload) }
}

/// A message's fields: `name=value` pairs separated by spaces, as the guest's shell writes them
/// (`kiln-event tree "partition=2 list_offset=1048576 list_size=52"`). Values are numbers or tokens
/// without spaces; the order is free, and a field the reader does not know is ignored.
package struct GuestRecord: Sendable, Equatable {
    package private(set) var fields: [String: String] = [:]

    package init(_ payload: String) {
        for field in payload.split(separator: " ") {
            guard let equals = field.firstIndex(of: "=") else { continue }
            fields[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
    }

    package func text(_ name: String) throws(GuestRecordError) -> String {
        guard let value = fields[name], !value.isEmpty else { throw GuestRecordError(missing: name) }
        return value
    }

    package func integer(_ name: String) throws(GuestRecordError) -> Int64 {
        guard let value = Int64(try text(name)) else { throw GuestRecordError(field: name, value: fields[name] ?? "") }
        return value
    }

    package func number(_ name: String) throws(GuestRecordError) -> Double {
        guard let value = Double(try text(name)) else { throw GuestRecordError(field: name, value: fields[name] ?? "") }
        return value
    }

    /// An optional field: nil when absent, an error when present but not a number.
    package func optionalInteger(_ name: String) throws(GuestRecordError) -> Int64? {
        fields[name] == nil ? nil : try integer(name)
    }
}

/// A record without a field its reader needs, or with one that is not what it should be.
package struct GuestRecordError: Error, Sendable, CustomStringConvertible {
    package let description: String

    init(missing name: String) { description = "no field '\(name)'" }
    init(field name: String, value: String) { description = "field '\(name)' is '\(value)', not a number" }
}

/// A job's own report, read from the record of the message named `event` (the install job's
/// configured base, its initramfs, its file system trees).
package protocol GuestReport: Sendable {
    static var event: String { get }
    init(_ record: GuestRecord) throws(GuestRecordError)
}

/// What the builder guest's `/init` and every job say, read from the wire once, here.
package enum GuestMessage: Sendable, Equatable {
    /// `/init` runs, its modules are loaded, the job is unpacked: the guest kernel's uptime then.
    case started(GuestStage, uptime: Double)
    case step(String)
    case info(String)
    case progress(completed: Int64, total: Int64?)
    case result(String)
    case error(String)
    case exit(status: Int)
    /// A job's own report (see `GuestReport`), read by whoever asked the job for it.
    case report(name: String, GuestRecord)

    /// The message `event` carries; a record that does not read is an error naming the event.
    init(_ event: GuestEvent) throws(GuestRecordError) {
        let record = event.record
        switch event.name {
        case "init": self = .started(.initStarted, uptime: try record.number("uptime"))
        case "modules": self = .started(.modulesLoaded, uptime: try record.number("uptime"))
        case "job": self = .started(.jobUnpacked, uptime: try record.number("uptime"))
        case "step": self = .step(event.payload)
        case "info": self = .info(event.payload)
        case "progress":
            self = .progress(completed: try record.integer("completed"), total: try record.optionalInteger("total"))
        case "result": self = .result(event.payload)
        case "error": self = .error(event.payload)
        case "exit": self = .exit(status: Int(try record.integer("status")))
        default: self = .report(name: event.name, record)
        }
    }
}

/// The points of the guest's start that `/init` reports.
package enum GuestStage: Sendable, Equatable {
    case initStarted, modulesLoaded, jobUnpacked
}

/// Tells protocol lines from everything else on the console (kernel messages, the job's own
/// output). A line counts only if it starts with `KILN:` and carries the next sequence number, so
/// that a stray or repeated line (a job printing `KILN:` itself, a line cut by a kernel message)
/// is logged and never obeyed.
struct GuestProtocolParser {
    private(set) var expected = 1

    mutating func parse(_ line: String) -> GuestEvent? {
        guard line.hasPrefix("KILN:") else { return nil }
        let fields = line.dropFirst(5).split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let sequence = Int(fields[0]), sequence == expected, !fields[1].isEmpty else {
            return nil
        }
        expected += 1
        return GuestEvent(sequence: sequence, name: String(fields[1]), payload: String(fields[2]))
    }
}
