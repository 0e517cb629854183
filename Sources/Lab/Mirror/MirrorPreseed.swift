/// The preseed answers that point debian-installer at kiln's lab mirror.
///
/// Appended after a description's own preseed: debconf keeps the last answer given for a question,
/// so these replace the mirror the description (or the host's apt sources) named.
package enum MirrorPreseed {
    /// - Parameters:
    ///   - host: the address (and `:port` unless 80) the installed host reaches kiln's HTTP at.
    ///   - prefix: the mirror's path prefix (`LabMirror.prefix`).
    ///   - codename: the suite to install.
    package static func lines(host: String, prefix: String = "debian", codename: String) -> [String] {
        [
            "# The lab mirror kiln serves; its Release is signed with kiln's key, which the installer",
            "# carries in its initrd and the installed system gets in \(InstallerOverlay.targetKeyPath).",
            "d-i mirror/country string manual",
            "d-i mirror/protocol string http",
            "d-i mirror/http/hostname string \(host)",
            "d-i mirror/http/directory string /\(prefix)",
            "d-i mirror/http/proxy string",
            "d-i mirror/suite string \(codename)",
            "d-i mirror/udeb/suite string \(codename)",
            // The mirror merges the host's updates and security suites into one: nothing else to add,
            // and nothing outside the lab to reach.
            "d-i apt-setup/services-select multiselect",
            "d-i apt-setup/use_mirror boolean true",
            "d-i debian-installer/allow_unauthenticated boolean false",
        ]
    }

    /// `preseed` with the mirror's lines appended.
    package static func apply(to preseed: String, host: String, prefix: String = "debian", codename: String) -> String {
        var text = preseed
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        return text + lines(host: host, prefix: prefix, codename: codename).joined(separator: "\n") + "\n"
    }
}
