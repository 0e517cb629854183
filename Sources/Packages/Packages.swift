// The Packages module; see README.md's map of modules.
