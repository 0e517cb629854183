import Testing

@testable import NetBoot
