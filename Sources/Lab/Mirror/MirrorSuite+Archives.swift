import NetBoot
import Packages

extension MirrorSuite {
    /// The suite `codename` made from archive sources (the host's apt sources, moved to `codename`
    /// with `AptSources.retarget`): each suite's InRelease checked with gpgv, its Packages and
    /// installer Packages indexes read through the cache and checked against it, and the stanzas of
    /// all suites merged per component (`bookworm`, `bookworm-updates` and `bookworm-security` become
    /// one `bookworm`; apt and the installer take the highest version). Installer packages come from
    /// the suite named `codename` only. An installer index that does not match the signed Release is
    /// left out (named in `leftOut`) rather than failing the mirror: the packages apt needs still
    /// come, and debian-installer, which cannot run without its udebs anyway, is the only loser.
    ///
    /// - Throws: `NetBootError(.io)` with the archive's error when a suite cannot be read.
    package static func fromArchives(codename: String, sources: [ArchiveSource], client: ArchiveClient) async throws
        -> MirrorSuite
    {
        var order: [String] = []
        var packages: [String: [MirrorPackage]] = [:]
        var installer: [String: [MirrorPackage]] = [:]
        var seen: Set<String> = []
        var leftOut: [String] = []
        for source in AptSources.retarget(sources, to: codename) {
            let release: Release
            do {
                release = try await client.release(source)
            } catch {
                throw NetBootError(.io, "cannot read \(source.label) for the lab mirror", underlying: error)
            }
            for component in source.components {
                if !order.contains(component) { order.append(component) }
                // The installer's udebs come from the release itself: its netboot kernel matches the
                // module udebs there, not those of the updates or security suites.
                let kinds: [ArchiveClient.IndexKind] = source.suite == codename ? [.packages, .installer] : [.packages]
                for kind in kinds {
                    let bytes: [UInt8]?
                    do {
                        bytes = try await client.indexBytes(release, component: component, kind: kind)
                    } catch  where kind == .installer && error.code == .integrity {
                        leftOut.append(
                            "\(source.label) \(component): the installer index does not match the signed Release, "
                                + "so the mirror serves no installer packages from it (\(error.description))")
                        continue
                    } catch {
                        throw NetBootError(
                            .io, "cannot read \(source.label) \(component) for the lab mirror", underlying: error)
                    }
                    guard let bytes else { continue }
                    let origin = "\(source.label) \(component)\(kind == .installer ? " debian-installer" : "")"
                    // A file two suites share (the same pool path) is listed once.
                    let parsed = try MirrorPackage.parseIndex(bytes, baseURL: source.uri, origin: origin).filter {
                        seen.insert($0.filename).inserted
                    }
                    if kind == .packages {
                        packages[component, default: []] += parsed
                    } else {
                        installer[component, default: []] += parsed
                    }
                }
            }
        }
        var suite = MirrorSuite(
            codename: codename, architecture: client.architecture,
            components: order.map {
                Component(name: $0, packages: packages[$0] ?? [], installerPackages: installer[$0] ?? [])
            })
        suite.leftOut = leftOut
        return suite
    }
}
