import ArgumentParser

/// The root command; each subcommand lives in its own file.
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Build appliance images and install lab hosts over the network from one YAML description.",
        version: "0.1.0",
        subcommands: [
            ValidateCommand.self,
            KickstartCommand.self,
            PreseedCommand.self,
            ImportKickstartCommand.self,
            SchemaCommand.self,
            LockCommand.self,
            BuildCommand.self,
            ConvertCommand.self,
            InspectCommand.self,
            TestCommand.self,
            ServeCommand.self,
        ]
    )
}
