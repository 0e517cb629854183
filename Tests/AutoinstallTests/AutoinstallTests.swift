import Testing

@testable import Autoinstall
