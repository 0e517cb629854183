import Testing

@testable import Packages
