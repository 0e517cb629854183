/// One archive a preseed may point debian-installer at: a base URI, its suites and components. The
/// command layer reads them from the host's apt sources (the Packages module's `AptSources`), so
/// that renderers never read host files themselves.
public struct AptSource: Sendable, Equatable {
    public var uri: String
    public var suites: [String]
    public var components: [String]

    public init(uri: String, suites: [String], components: [String]) {
        self.uri = uri
        self.suites = suites
        self.components = components
    }
}
