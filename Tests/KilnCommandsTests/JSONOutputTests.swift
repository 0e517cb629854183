import Foundation
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--json` on every command: one object per line on stdout, a result or an error, slashes unescaped.
@Suite(.requires(KilnProgram.isBuilt, "the kiln binary"))
struct JSONOutputTests {
    private func objects(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    private func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "kiln-json-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func validateReportsEachFileWithPositions() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: bad\nos:\n  name: debian\n  version: \"12\"\npakages: [x]\n"
            .write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(
            atPath: KilnProgram.packageRoot + "/Appliances/debian-minimal.yaml", toPath: dir + "/good.yaml")
        let (code, out, _) = try KilnProgram.run(["validate", "--json", "good.yaml", "bad.yaml"], cwd: dir)
        #expect(code == 1)
        let lines = objects(out)
        #expect(lines.count == out.split(separator: "\n").count, "every stdout line is JSON: \(out)")
        let result = try #require(lines.first { $0["event"] as? String == "result" }, "\(out)")
        let files = result["files"] as? [[String: Any]] ?? []
        #expect(files.map { $0["file"] as? String } == ["good.yaml", "bad.yaml"])
        #expect(files.map { $0["ok"] as? Bool } == [true, false])
        let error = (files.last?["errors"] as? [[String: Any]])?.first
        #expect(error?["line"] as? Int == 5 && error?["column"] as? Int == 1, "\(String(describing: error))")
        #expect((error?["message"] as? String)?.contains("did you mean 'packages'") == true)
        // The failure itself, for a program that reads only stdout.
        let failure = lines.first { $0["event"] as? String == "error" }
        #expect(failure?["exit_code"] as? Int == 1, "\(out)")
    }

    @Test func textCommandsGiveTheirTextOrTheirOutputFile() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = KilnProgram.packageRoot
        let (ks, ksOut, ksErr) = try KilnProgram.run(["kickstart", "--json", "Appliances/rocky-9.yaml"], cwd: root)
        #expect(ks == 0, "\(ksErr)")
        #expect((objects(ksOut).first?["text"] as? String)?.contains("%packages") == true, "\(ksOut)")

        let (ps, psOut, psErr) = try KilnProgram.run(
            [
                "preseed", "--json", "--apt-root", "Kickstarts/example-apt", "Appliances/debian-minimal.yaml", "-o",
                dir + "/p.preseed",
            ], cwd: root)
        #expect(ps == 0, "\(psErr)")
        let written = objects(psOut).first
        #expect(written?["output"] as? String == dir + "/p.preseed")
        let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/p.preseed")[.size] as? Int) ?? -1
        #expect(written?["bytes"] as? Int == size)

        let (sc, scOut, _) = try KilnProgram.run(["schema", "--json"])
        #expect(sc == 0)
        #expect(scOut.contains("https://json-schema.org/draft/2020-12/schema"), "slashes escaped: \(scOut.prefix(300))")
        #expect(!scOut.contains("\\/"))
        let (plain, plainOut, _) = try KilnProgram.run(["schema"])
        #expect(plain == 0 && !plainOut.contains("\\/"), "kiln schema escapes slashes")

        try "%packages\nvim\n%end\n".write(toFile: dir + "/in.ks", atomically: true, encoding: .utf8)
        let (ik, ikOut, ikErr) = try KilnProgram.run(["import-kickstart", "--json", "in.ks"], cwd: dir)
        #expect(ik == 0, "\(ikErr)")
        let imported = objects(ikOut).first
        #expect((imported?["text"] as? String)?.contains("vim") == true, "\(ikOut)")
        #expect(imported?["warnings"] is [String], "\(ikOut)")
    }

    @Test func aFailedCommandWritesItsErrorObject() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = try KilnProgram.run(["convert", "missing.raw", "out.qcow2", "--json"], cwd: dir)
        #expect(code == 1)
        let failure = objects(out).first
        #expect(failure?["event"] as? String == "error", "\(out)")
        #expect(failure?["exit_code"] as? Int == 1)
        #expect((failure?["messages"] as? [String])?.first?.contains("missing.raw") == true, "\(out) / \(err)")
        let (usage, usageOut, _) = try KilnProgram.run(["convert", "--json"], cwd: dir)
        #expect(usage == 2)
        #expect(objects(usageOut).first?["exit_code"] as? Int == 2, "\(usageOut)")
    }

    /// What qemu-img says about `path`, as its own JSON.
    private func qemuImgInfo(_ path: String) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-img")
        process.arguments = ["info", "--output=json", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test(.requires(.program("qemu-img")))
    func convertAndInspectReportWhatQemuImgSees() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A GPT disk of 64 MiB with one partition and some data, so that every field has a value.
        let raw = dir + "/disk.raw"
        try TestData.writeRandom(mebibytes: 3, to: raw)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()
        let sfdisk = Process()
        sfdisk.executableURL = URL(fileURLWithPath: "/sbin/sfdisk")
        sfdisk.arguments = ["-q", raw]
        let input = Pipe()
        sfdisk.standardInput = input
        sfdisk.standardOutput = FileHandle.nullDevice
        try sfdisk.run()
        input.fileHandleForWriting.write(Data("label: gpt\nstart=2048, size=8192, name=data\n".utf8))
        try input.fileHandleForWriting.close()
        sfdisk.waitUntilExit()
        #expect(sfdisk.terminationStatus == 0)

        let (code, out, err) = try KilnProgram.run(["convert", "--json", "disk.raw", "disk.qcow2"], cwd: dir)
        #expect(code == 0, "\(err)")
        let result = try #require(objects(out).first { $0["event"] as? String == "result" }, "\(out)")
        let qemu = try qemuImgInfo(dir + "/disk.qcow2")
        #expect(result["output"] as? String == "disk.qcow2")
        #expect(result["format"] as? String == qemu["format"] as? String)
        #expect(result["virtual_size"] as? Int == qemu["virtual-size"] as? Int, "\(out)")
        #expect(result["allocated_bytes"] as? Int == qemu["actual-size"] as? Int, "\(out)")
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/disk.qcow2")[.size] as? Int
        #expect(result["file_size"] as? Int == size)

        let (inspected, report, inspectErr) = try KilnProgram.run(["inspect", "--json", "disk.qcow2"], cwd: dir)
        #expect(inspected == 0, "\(inspectErr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect(object["format"] as? String == "qcow2")
        #expect(object["virtual_size"] as? Int == qemu["virtual-size"] as? Int)
        #expect(object["cluster_size"] as? Int == qemu["cluster-size"] as? Int)
        #expect(object["partition_table"] as? String == "gpt")
        let partitions = object["partitions"] as? [[String: Any]] ?? []
        #expect(partitions.count == 1, "\(report)")
        #expect(partitions.first?["start"] as? Int == 2048 * 512 && partitions.first?["size"] as? Int == 8192 * 512)
        #expect(partitions.first?["name"] as? String == "data")
        #expect(object["backing_file"] == nil && object["backing_followed"] == nil, "no backing file: \(report)")
    }

    @Test(.requires(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl (TFTP client)"))
    func serveLogsAsJSONLines() async throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/root/hello.txt", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        defer { try? out.close() }
        let process = KilnProgram.process(
            ["serve", "--tftp-root", dir + "/root", "--tftp", "127.0.0.1:0", "--http", "off", "--json"])
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var listening: [String: Any]?
        for _ in 0..<100 where listening == nil {
            try await Task.sleep(for: .milliseconds(100))
            let text = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
            listening = objects(text).first { $0["event"] as? String == "listening" }
        }
        let address = try #require(listening?["address"] as? String, "no listening event")
        #expect(listening?["service"] as? String == "tftp")
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "-o", dir + "/got.txt", "tftp://\(address)/hello.txt"]
        try curl.run()
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 0)
        try await Task.sleep(for: .milliseconds(500))
        let text = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
        let lines = objects(text)
        #expect(lines.count == text.split(separator: "\n").count, "every stdout line is JSON: \(text)")
        let sent = lines.first { $0["event"] as? String == "log" && $0["message"] as? String == "tftp: sent" }
        #expect(sent?["file"] as? String == "hello.txt", "\(text)")
        #expect(sent?["level"] as? String == "info")
    }
}
