import Crypto
import Foundation
import KilnSupport
import Packages

/// What a build writes beside its images: `manifest.json` (inputs, lockfile, each output's size
/// and SHA-256), `<name>.packages` (one `name version architecture` line per installed package) and
/// `<name>.spdx.json` (an SPDX 2.3 SBOM of the installed packages).
struct BuildRecords {
    let build: ImageBuild
    let root: TargetRoot
    let outputs: [ImageBuild.Output]

    /// Writes the three files; returns the manifest's path.
    func write() throws(BuilderError) -> String {
        let dir = build.options.outputDirectory
        let name = build.appliance.name
        let manifestPath = "\(dir)/manifest.json"
        do {
            try AtomicOutput.write(packageList, to: "\(dir)/\(name).packages")
            try AtomicOutput.write(try json(sbom), to: "\(dir)/\(name).spdx.json")
            try AtomicOutput.write(try json(manifest), to: manifestPath)
        } catch let error as OutputError {
            throw BuilderError(error.description)
        } catch {
            throw BuilderError("cannot write the build records: \(error)")
        }
        return manifestPath
    }

    var packageList: String {
        build.lockfile.packages.map { "\($0.name) \($0.version) \($0.architecture)\n" }.joined()
    }

    var manifest: Manifest {
        Manifest(
            kiln: "0.1.0", appliance: build.appliance.name,
            description: .init(path: build.appliance.sourcePath, sha256: build.descriptionDigest),
            sourceDateEpoch: build.options.sourceDateEpoch,
            lockfile: .init(
                packages: build.lockfile.packages.count, sha256: sha256(build.lockfile.encoded()),
                archives: build.lockfile.archives.map {
                    .init(uri: $0.uri, suite: $0.suite, date: $0.date, inReleaseSHA256: $0.inReleaseSHA256)
                }),
            outputs: outputs.map {
                .init(
                    file: ($0.path as NSString).lastPathComponent, format: $0.format, size: $0.size, sha256: $0.sha256)
            })
    }

    /// SPDX 2.3: one package per locked `.deb`, with its purl and checksum, all contained in the image.
    var sbom: SPDXDocument {
        let created = ISO8601DateFormatter().string(
            from: Date(timeIntervalSince1970: TimeInterval(build.options.sourceDateEpoch)))
        let image = "SPDXRef-Image"
        var packages = [
            SPDXDocument.Package(
                spdxID: image, name: build.appliance.name,
                versionInfo: "\(build.appliance.version).\(build.appliance.release)",
                primaryPackagePurpose: "OPERATING-SYSTEM")
        ]
        var relationships = [
            SPDXDocument.Relationship(
                spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: image)
        ]
        for package in build.lockfile.packages {
            let id = "SPDXRef-Package-" + spdxID(package.name)
            packages.append(
                .init(
                    spdxID: id, name: package.name, versionInfo: package.version, supplier: "Organization: Debian",
                    downloadLocation: package.url,
                    checksums: [.init(algorithm: "SHA256", checksumValue: package.sha256)],
                    externalRefs: [
                        .init(
                            referenceCategory: "PACKAGE-MANAGER", referenceType: "purl",
                            referenceLocator:
                                "pkg:deb/debian/\(package.name)@\(percentEncoded(package.version))?arch=\(package.architecture)"
                        )
                    ]))
            relationships.append(.init(spdxElementId: image, relationshipType: "CONTAINS", relatedSpdxElement: id))
        }
        return SPDXDocument(
            name: "\(build.appliance.name)-image",
            documentNamespace: "https://spdx.org/spdxdocs/kiln/\(build.appliance.name)-\(build.seed.prefix(16))",
            creationInfo: .init(created: created, creators: ["Tool: kiln-0.1.0"]),
            packages: packages, relationships: relationships)
    }

    private func spdxID(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "-" })
    }

    private func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-_~")))
            ?? text
    }

    private func sha256(_ text: String) -> String {
        ImageBuild.hex(Array(text.utf8))
    }

    private func json(_ value: some Encodable) throws -> String {
        let encoder = KilnJSON.encoder()
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}

extension BuildRecords {
    /// `manifest.json`: what went in (the description, the lockfile and its archives) and what came out.
    struct Manifest: Encodable {
        struct Description: Encodable {
            let path: String
            let sha256: String
        }

        struct Lockfile: Encodable {
            struct Archive: Encodable {
                let uri: String
                let suite: String
                let date: String
                let inReleaseSHA256: String

                enum CodingKeys: String, CodingKey {
                    case uri, suite, date
                    case inReleaseSHA256 = "inrelease_sha256"
                }
            }

            let packages: Int
            let sha256: String
            let archives: [Archive]
        }

        struct Output: Encodable {
            let file: String
            let format: String
            let size: Int64
            let sha256: String
        }

        let kiln: String
        let appliance: String
        let description: Description
        let sourceDateEpoch: Int64
        let lockfile: Lockfile
        let outputs: [Output]

        enum CodingKeys: String, CodingKey {
            case kiln, appliance, description, lockfile, outputs
            case sourceDateEpoch = "source_date_epoch"
        }
    }

    /// An SPDX 2.3 document, as much of it as kiln fills in.
    struct SPDXDocument: Encodable {
        struct Package: Encodable {
            struct Checksum: Encodable {
                let algorithm: String
                let checksumValue: String
            }

            struct ExternalRef: Encodable {
                let referenceCategory: String
                let referenceType: String
                let referenceLocator: String
            }

            let spdxID: String
            let name: String
            let versionInfo: String
            var supplier: String? = nil
            var downloadLocation = "NOASSERTION"
            var filesAnalyzed = false
            var primaryPackagePurpose: String? = nil
            var checksums: [Checksum]? = nil
            var externalRefs: [ExternalRef]? = nil

            enum CodingKeys: String, CodingKey {
                case spdxID = "SPDXID"
                case name, versionInfo, supplier, downloadLocation, filesAnalyzed, primaryPackagePurpose, checksums
                case externalRefs
            }
        }

        struct CreationInfo: Encodable {
            let created: String
            let creators: [String]
        }

        struct Relationship: Encodable {
            let spdxElementId: String
            let relationshipType: String
            let relatedSpdxElement: String
        }

        var spdxVersion = "SPDX-2.3"
        var dataLicense = "CC0-1.0"
        var spdxID = "SPDXRef-DOCUMENT"
        let name: String
        let documentNamespace: String
        let creationInfo: CreationInfo
        let packages: [Package]
        let relationships: [Relationship]

        enum CodingKeys: String, CodingKey {
            case spdxVersion, dataLicense
            case spdxID = "SPDXID"
            case name, documentNamespace, creationInfo, packages, relationships
        }
    }
}

extension ImageBuild {
    /// SHA-256 of `bytes`, in hex.
    static func hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
