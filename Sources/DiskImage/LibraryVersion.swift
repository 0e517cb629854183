import CKilnZlib

/// The zlib kiln compresses with, for `kiln version`.
package enum ZlibVersion {
    package static var text: String { String(cString: zlibVersion()) }
}
