// The Builder module; see README.md's map of modules.
