import Foundation
import KilnTestSupport
import Testing

@testable import KilnCommands

private let packageRoot = KilnProgram.packageRoot

private func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "kiln-commands-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

private func exampleFiles() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/Appliances")
        .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".appl") }.sorted()
}

@Suite struct DescriptionCommandTests {
    @Test func validateAcceptsEverythingInAppliances() throws {
        let files = try exampleFiles().map { "Appliances/\($0)" }
        let (code, out, err) = try KilnProgram.run(["validate"] + files, cwd: packageRoot)
        #expect(code == 0, "\(err)")
        #expect(out.split(separator: "\n").count == files.count)
    }

    @Test func badInputGivesPositionsExitOneAndNoFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: bad\nos:\n  name: fedora\n  version: \"40\"\npakages: [x]\nhardware:\n  cpus: -1\n"
            .write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(["validate", "bad.yaml"], cwd: dir)
        #expect(code == 1)
        #expect(out.isEmpty)
        #expect(
            err == """
                bad.yaml:5:1: error: unknown key 'pakages' in the description; did you mean 'packages'?
                bad.yaml:7:9: error: hardware.cpus must be between 1 and 1024

                """)
        let (ksCode, _, ksErr) = try KilnProgram.run(["kickstart", "bad.yaml", "-o", "out.ks"], cwd: dir)
        #expect(ksCode == 1)
        #expect(ksErr.hasPrefix("bad.yaml:5:1: error:"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir) == ["bad.yaml"],
            "nothing written, not even a temporary file")
    }

    @Test func wrongFamilyIsAClearError() throws {
        let (code, _, err) = try KilnProgram.run(["preseed", "Appliances/rocky-9.yaml"], cwd: packageRoot)
        #expect(code == 1)
        #expect(err.contains("use kiln kickstart"))
    }

    /// Kickstarts/ holds what kiln writes for each file in Appliances/.
    @Test func kickstartsFolderIsInStepWithAppliances() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var expected: [String] = []
        for file in try exampleFiles() {
            let base = (file as NSString).deletingPathExtension
            var (code, _, _) = try KilnProgram.run(
                ["kickstart", "Appliances/\(file)", "-o", "\(dir)/\(base).ks"], cwd: packageRoot)
            var output = "\(base).ks"
            if code != 0 {
                (code, _, _) = try KilnProgram.run(
                    [
                        "preseed", "--apt-root", "Kickstarts/example-apt", "Appliances/\(file)", "-o",
                        "\(dir)/\(base).preseed",
                    ],
                    cwd: packageRoot)
                output = "\(base).preseed"
            }
            #expect(code == 0, "\(file)")
            expected.append(output)
            let generated = FileManager.default.contents(atPath: "\(dir)/\(output)")
            let committed = FileManager.default.contents(atPath: "\(packageRoot)/Kickstarts/\(output)")
            #expect(
                generated != nil && generated == committed, "Kickstarts/\(output) is out of date: run `make kickstarts`"
            )
        }
        let present = try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/Kickstarts")
            .filter { $0.hasSuffix(".ks") || $0.hasSuffix(".preseed") }.sorted()
        #expect(present == expected.sorted(), "Kickstarts/ has files for no description: run `make kickstarts`")
    }

    @Test func importKickstartRoundTripThroughTheCommandLine() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = try KilnProgram.run(["import-kickstart", "Kickstarts/rocky-9.ks"], cwd: packageRoot)
        #expect(code == 0, "\(err)")
        try out.write(toFile: dir + "/rocky-9.yaml", atomically: true, encoding: .utf8)
        let (again, ks, _) = try KilnProgram.run(["kickstart", dir + "/rocky-9.yaml"])
        #expect(again == 0)
        #expect(ks == (try String(contentsOfFile: packageRoot + "/Kickstarts/rocky-9.ks", encoding: .utf8)))
    }

    @Test func importKickstartWritesNothingUnlessTheDescriptionValidates() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A user name kiln refuses (capitals): the imported description would not validate.
        try "lang en_US.UTF-8\nuser --name=Admin\nautopart\nreboot\n"
            .write(toFile: dir + "/bad.ks", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(["import-kickstart", "bad.ks", "-o", "bad.yaml"], cwd: dir)
        #expect(code == 1)
        #expect(out.isEmpty)
        #expect(err.contains("kiln: error: bad.yaml:"), "\(err)")
        #expect(err.contains("user name 'Admin'"), "\(err)")
        #expect(err.contains("nothing written"), "\(err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bad.ks"])
    }

    @Test func warningsNameTheFileLineAndColumnAndKeepExitZero() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: old\nos:\n  name: centos\n  version: 6\npackages:\n  - @core\n"
            .write(toFile: dir + "/old.appl", atomically: true, encoding: .utf8)
        let (code, out, err) = try KilnProgram.run(["validate", "old.appl"], cwd: dir)
        #expect(code == 0, "\(err)")
        #expect(out == "old.appl: ok\n")
        #expect(err.hasPrefix("old.appl:3:9: warning: no os.password: root gets BoxGrinder's default"), "\(err)")
    }

    @Test func schemaIsJSONThatNamesEveryTopLevelKey() throws {
        let (code, out, _) = try KilnProgram.run(["schema"])
        #expect(code == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let properties = try #require(object["properties"] as? [String: Any])
        for key in [
            "name", "os", "hardware", "packages", "repos", "appliances", "files", "post", "variables", "users",
            "services", "network", "kernel_args", "console", "test", "hostname", "default_repos",
        ] {
            #expect(properties[key] != nil, "schema lacks \(key)")
        }
        #expect(object["additionalProperties"] as? Bool == false)
    }

    /// The schema judged by python-jsonschema: a valid draft 2020-12 schema that accepts every
    /// example and refuses unknown keys and negative sizes.
    @Test(
        .requires(pythonWithJSONSchema != nil, "jsonschema and PyYAML in .tools/venv (scripts/install-deps.sh)"))
    func schemaAcceptsTheExamplesAndRefusesBadInput() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, _, _) = try KilnProgram.run(["schema", "-o", dir + "/schema.json"])
        #expect(code == 0)
        try "name: x\npakages: [a]\nhardware: {partitions: {\"/\": {size: -1}}}\n"
            .write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let script = """
            import json, sys, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            for path in sys.argv[2:]:
                for error in validator.iter_errors(yaml.safe_load(open(path))):
                    print(path, error.message)
            """
        // scientific-6.appl uses Kwalify's leniencies (an unquoted @core), which no YAML parser takes.
        let examples = try exampleFiles().filter { $0 != "scientific-6.appl" }.map { packageRoot + "/Appliances/" + $0 }
        let python = try #require(pythonWithJSONSchema)
        let (status, good, errors) = try runProgram(python, ["-c", script, dir + "/schema.json"] + examples)
        #expect(status == 0, "\(errors)")
        #expect(good.isEmpty, "\(good)")
        let (_, bad, _) = try runProgram(python, ["-c", script, dir + "/schema.json", dir + "/bad.yaml"])
        #expect(bad.contains("'pakages' was unexpected"))
        #expect(bad.contains("-1 is not valid"))
    }
}

/// The venv's python when it has jsonschema and PyYAML.
private let pythonWithJSONSchema: String? = {
    let python = packageRoot + "/.tools/venv/bin/python"
    guard FileManager.default.isExecutableFile(atPath: python),
        let (status, _, _) = try? runProgram(python, ["-c", "import jsonschema, yaml"]), status == 0
    else { return nil }
    return python
}()

private func runProgram(_ program: String, _ arguments: [String]) throws -> (Int32, String, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (
        process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)
    )
}
