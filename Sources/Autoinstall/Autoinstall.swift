// The Autoinstall module; see README.md's map of modules.
