import Testing

@testable import DiskImage
