import CKilnCrypt
import Crypto
import Foundation

/// SHA-512 crypt (`$6$`) hashes of passwords given as text, with a salt derived from the
/// description so that the same description always gives the same output.
package enum PasswordHash {
    private static let alphabet = Array("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    /// The `$6$` hash of `password`; `context` (appliance and account names) makes the salt.
    package static func sha512(_ password: String, context: String) -> String? {
        let digest = SHA256.hash(data: Data("kiln-salt\u{0}\(context)\u{0}\(password)".utf8))
        let salt = String(digest.prefix(16).map { alphabet[Int($0) % alphabet.count] })
        return crypt(password, setting: "$6$\(salt)$")
    }

    /// libcrypt's `crypt_r`; nil when the setting is refused.
    package static func crypt(_ password: String, setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_r(password, setting, data) else { return nil }
        let text = String(cString: result)
        // libxcrypt reports failure with a string starting with '*'.
        return text.hasPrefix("*") ? nil : text
    }

    /// Whether `text` looks like a crypt hash kiln can put in an output (`$6$...`, `$5$`, `$y$`,
    /// `$2b$`), or a locked marker (`!`, `*`).
    package static func isCryptHash(_ text: String) -> Bool {
        if text == "!" || text == "*" { return true }
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard text.hasPrefix("$"), parts.count >= 4, ["1", "5", "6", "y", "2a", "2b", "2y"].contains(String(parts[1]))
        else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", ".", "/", "$", "=", ",": return true
            default: return false
            }
        }
    }
}
