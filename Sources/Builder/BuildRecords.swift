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

    var manifest: [String: Any] {
        [
            "kiln": "0.1.0",
            "appliance": build.appliance.name,
            "description": [
                "path": build.appliance.sourcePath,
                "sha256": build.descriptionDigest,
            ],
            "source_date_epoch": build.options.sourceDateEpoch,
            "lockfile": [
                "packages": build.lockfile.packages.count,
                "sha256": sha256(build.lockfile.encoded()),
                "archives": build.lockfile.archives.map {
                    ["uri": $0.uri, "suite": $0.suite, "date": $0.date, "inrelease_sha256": $0.inReleaseSHA256]
                },
            ],
            "outputs": outputs.map { output in
                [
                    "file": (output.path as NSString).lastPathComponent, "format": output.format,
                    "size": output.size, "sha256": output.sha256,
                ] as [String: Any]
            },
        ]
    }

    /// SPDX 2.3: one package per locked `.deb`, with its purl and checksum, all contained in the image.
    var sbom: [String: Any] {
        let created = ISO8601DateFormatter().string(
            from: Date(timeIntervalSince1970: TimeInterval(build.options.sourceDateEpoch)))
        let image = "SPDXRef-Image"
        var packages: [[String: Any]] = [
            [
                "SPDXID": image, "name": build.appliance.name,
                "versionInfo": "\(build.appliance.version).\(build.appliance.release)",
                "downloadLocation": "NOASSERTION", "filesAnalyzed": false, "primaryPackagePurpose": "OPERATING-SYSTEM",
            ]
        ]
        var relationships: [[String: Any]] = [
            ["spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image]
        ]
        for package in build.lockfile.packages {
            let id = "SPDXRef-Package-" + spdxID(package.name)
            packages.append([
                "SPDXID": id, "name": package.name, "versionInfo": package.version, "supplier": "Organization: Debian",
                "downloadLocation": package.url, "filesAnalyzed": false,
                "checksums": [["algorithm": "SHA256", "checksumValue": package.sha256]],
                "externalRefs": [
                    [
                        "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                        "referenceLocator":
                            "pkg:deb/debian/\(package.name)@\(percentEncoded(package.version))?arch=\(package.architecture)",
                    ]
                ],
            ])
            relationships.append(["spdxElementId": image, "relationshipType": "CONTAINS", "relatedSpdxElement": id])
        }
        return [
            "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": "\(build.appliance.name)-image",
            "documentNamespace": "https://spdx.org/spdxdocs/kiln/\(build.appliance.name)-\(build.seed.prefix(16))",
            "creationInfo": ["created": created, "creators": ["Tool: kiln-0.1.0"]],
            "packages": packages, "relationships": relationships,
        ]
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

    private func json(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

extension ImageBuild {
    /// SHA-256 of `bytes`, in hex.
    static func hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
