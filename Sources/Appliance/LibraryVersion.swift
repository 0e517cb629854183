import CKilnYaml

/// The libyaml kiln reads descriptions with, for `kiln version`.
public enum LibyamlVersion {
    public static var text: String { String(cString: yaml_get_version_string()) }
}
