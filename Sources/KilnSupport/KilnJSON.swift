import Foundation

/// How kiln writes JSON: keys sorted, so that the same value gives the same bytes, and slashes as they
/// are, so that paths stay readable. Files people read (lockfiles, manifests, records, the schema) are
/// pretty-printed; `--json` events are one line each.
package enum KilnJSON {
    package static func encoder(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
