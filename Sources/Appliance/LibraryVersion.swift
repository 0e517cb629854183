import CKilnYaml

/// The libyaml kiln reads descriptions with, for `kiln version`.
package enum LibyamlVersion {
    package static var text: String { String(cString: yaml_get_version_string()) }
}
