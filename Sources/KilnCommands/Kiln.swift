import ArgumentParser

/// The root command; each subcommand lives in its own file.
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Build appliance images and install lab hosts over the network from one YAML description.",
        discussion: """
            Global options, before the command: --quiet (only warnings, errors and results) and --verbose \
            (the detail behind each step, such as why KVM could not be used).
            """,
        version: VersionCommand.version,
        subcommands: [
            ValidateCommand.self,
            ShowCommand.self,
            KickstartCommand.self,
            PreseedCommand.self,
            ImportKickstartCommand.self,
            SchemaCommand.self,
            LockCommand.self,
            BuildCommand.self,
            ConvertCommand.self,
            InspectCommand.self,
            TestCommand.self,
            RunCommand.self,
            ServeCommand.self,
            CacheCommand.self,
            VersionCommand.self,
        ]
    )
}
