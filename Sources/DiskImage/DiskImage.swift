// The DiskImage module; see README.md's map of modules.
