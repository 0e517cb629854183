// The NetBoot module; see README.md's map of modules.
