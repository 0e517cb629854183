/// The shell script the builder guest runs to turn an empty disk into the target (SPEC, "How an
/// image is built", step 6). It runs under busybox `sh`, and in the target under its own `/bin/sh`.
///
/// Everything particular to one description comes from files beside it in `/job` (written by
/// `InstallJob`); the script itself is the same for every build, so that no value from a
/// description is ever read as shell code. Only `post` commands run as written, by design.
enum InstallScript {
    /// The script, `Sources/Builder/Resources/install.sh`, compiled into kiln (so that an installed
    /// binary needs no resource folder beside it).
    static let text = String(decoding: PackageResources.install_sh, as: UTF8.self)

    /// Stands in for update-initramfs while packages are configured (the real one runs once at the end).
    static let initramfsHold = """
        #!/bin/sh
        # kiln: update-initramfs is deferred until every package is configured.
        exit 0

        """
}
