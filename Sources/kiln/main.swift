import KilnCommands

await KilnCLI.main()
