import Testing

@testable import Builder
