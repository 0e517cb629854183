// The Appliance module; see README.md's map of modules.
