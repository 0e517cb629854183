import Foundation
import KilnSupport
import KilnTestSupport
import Testing

enum CIRecipe {
    /// PyYAML, which `make deps` installs into .tools/venv beside pykickstart.
    static let python = "\(KilnProgram.packageRoot)/.tools/venv/bin/python"
}

/// The CI recipes in docs/ci, as far as this machine can judge them without GitHub or GitLab: the
/// shared script is clean under shellcheck, both files are YAML their service reads, and both run
/// the script with the package cache kept between runs by the lockfile. The script's steps run for
/// real as the reproducibility rebuild (`BuildCommandTests.secondBuildIsBitIdentical`, `make
/// repro-test`): a locked build with `--accel auto`, booted under SeaBIOS and OVMF.
@Suite(.requires(.program("shellcheck"), .file(CIRecipe.python)))
struct CIRecipeTests {
    static let folder = "\(KilnProgram.packageRoot)/docs/ci"
    static let python = CIRecipe.python

    @Test func theSharedScriptIsCleanUnderShellcheck() async throws {
        let (ended, said) = try await Subprocess.output(["shellcheck", "\(Self.folder)/build-appliance.sh"])
        #expect(ended.succeeded, "\(said)")
    }

    /// The file read as YAML and written back as JSON, as the service would see its keys.
    static func load(_ name: String) async throws -> [String: Any] {
        let (ended, said) = try await Subprocess.output([
            python, "-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            "\(folder)/\(name)",
        ])
        try #require(ended.succeeded, "\(name) is no YAML: \(said)")
        let object = try JSONSerialization.jsonObject(with: Data(said.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func githubActionsRunsTheScriptAndCachesByLockfile() async throws {
        let workflow = try await Self.load("github-actions.yml")
        let jobs = try #require(workflow["jobs"] as? [String: Any])
        let build = try #require(jobs["build"] as? [String: Any])
        let steps = try #require(build["steps"] as? [[String: Any]])
        let runs = steps.compactMap { $0["run"] as? String }.joined(separator: "\n")
        #expect(runs.contains("ci/build-appliance.sh \"$DESCRIPTION\" out"))
        #expect(runs.contains("--device=/dev/kvm") && runs.contains("[ -e /dev/kvm ]"))
        #expect(runs.contains("KILN_CACHE=/work/.kiln-cache"))
        let caches = steps.filter { ($0["uses"] as? String)?.hasPrefix("actions/cache@") == true }
            .compactMap { $0["with"] as? [String: Any] }
        #expect(
            caches.contains {
                $0["path"] as? String == ".kiln-cache"
                    && ($0["key"] as? String)?.contains("hashFiles(format('{0}.lock', env.DESCRIPTION))") == true
            })
        let uploads = steps.filter { ($0["uses"] as? String)?.hasPrefix("actions/upload-artifact@") == true }
        #expect(uploads.count == 1)
        let env = try #require(workflow["env"] as? [String: Any])
        #expect(env["DESCRIPTION"] as? String == "appliance.yaml")
    }

    @Test func gitlabCIRunsTheScriptAndCachesByLockfile() async throws {
        let file = try await Self.load("gitlab-ci.yml")
        let variables = try #require(file["variables"] as? [String: Any])
        let description = try #require(variables["DESCRIPTION"] as? String)
        #expect(variables["KILN_CACHE"] as? String == "$CI_PROJECT_DIR/.kiln-cache")
        let job = try #require(file["appliance"] as? [String: Any])
        let script = try #require(job["script"] as? [String])
        #expect(script.contains("ci/build-appliance.sh \"$DESCRIPTION\" out"))
        let caches = try #require(job["cache"] as? [[String: Any]])
        let byLockfile = caches.first { ($0["paths"] as? [String]) == [".kiln-cache"] }
        let key = try #require(byLockfile?["key"] as? [String: Any])
        #expect(key["files"] as? [String] == ["\(description).lock"])
        let artifacts = try #require(job["artifacts"] as? [String: Any])
        #expect(artifacts["when"] as? String == "always")
    }
}
