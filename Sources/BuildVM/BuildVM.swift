// The BuildVM module; see README.md's map of modules.
