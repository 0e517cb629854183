import CKilnZlib

/// The zlib kiln compresses with, for `kiln version`.
public enum ZlibVersion {
    public static var text: String { String(cString: zlibVersion()) }
}
