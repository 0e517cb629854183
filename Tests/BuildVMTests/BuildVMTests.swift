import Testing

@testable import BuildVM
