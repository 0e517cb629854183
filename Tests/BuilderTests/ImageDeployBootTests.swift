import Foundation
import KilnSupport
import KilnTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A lab admin's image deploy, end to end, with real firmware: `kiln serve` as the DHCP server of a
/// bridge in a network namespace the test makes, and a blank machine with an 8 GiB disk, OVMF with its
/// own PXE client (GRUB, the agent over TFTP), deployed with the default appliance's image from
/// `BuildFixture` and booted from its disk to `NAME login:`. The status page is then read by headless
/// Chromium. (SeaBIOS with QEMU's iPXE ROM, the agent over HTTP, ran here beside it until the suite
/// outgrew its hour: NetworkInstallBootTests boots iPXE's chain to kiln's HTTP, and ImageDeployTests
/// runs the agent from the command line kiln's iPXE script gives.)
@Suite(
    .serialized,
    .requires(
        BuildFixture.canRun && FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd")
            && FileManager.default.fileExists(atPath: "/usr/lib/ipxe/qemu/efi-virtio.rom")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
        "root, ip, qemu, ovmf, ipxe-qemu and chromium"))
struct ImageDeployBootTests {
    struct Machine {
        var name: String
        var mac: String
        var tap: String
        var firmware: [String]
        var console: String
        var disk: String

        func command() -> [String] {
            [
                "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-display", "none", "-monitor", "none",
                "-serial", "file:\(console)", "-netdev", "tap,id=lab,ifname=\(tap),script=no,downscript=no",
                "-drive", "file=\(disk),if=none,id=disk,format=qcow2", "-device",
                "virtio-blk-pci,drive=disk,bootindex=2",
            ] + firmware
        }

        var consoleText: String {
            String(decoding: FileManager.default.contents(atPath: console) ?? Data(), as: UTF8.self)
        }
    }

    @Test func blankMachinesAreDeployedWithTheDefaultImageAndBootIt() async throws {
        let build = try await BuildFixture.shared.build()
        let folder = "\(build.directory)/deploy-lab"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: "/usr/share/OVMF/OVMF_VARS_4M.fd", toPath: "\(folder)/OVMF_VARS.fd")
        let machines = [
            Machine(
                name: "lab-21", mac: "52:54:00:20:00:21", tap: "tap-uefi",
                firmware: [
                    "-device", "virtio-net-pci,netdev=lab,mac=52:54:00:20:00:21,romfile=,bootindex=1", "-machine",
                    "q35",
                    "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                    "-drive", "if=pflash,format=raw,unit=1,file=\(folder)/OVMF_VARS.fd",
                ],
                console: "\(folder)/lab-21.console", disk: "\(folder)/lab-21.qcow2")
        ]
        var hosts = ""
        for machine in machines {
            hosts += "  - {mac: \"\(machine.mac)\", name: \(machine.name), image: ../out/debian-minimal.qcow2}\n"
            _ = try await Subprocess.output(["qemu-img", "create", "-q", "-f", "qcow2", machine.disk, "8G"])
        }
        let lab = "\(folder)/lab.yaml"
        try """
        address: 192.0.2.1
        interface: br-lab
        tftp: ":69"
        http: ":80"
        dhcp: {mode: server, range: 192.0.2.100-192.0.2.110, router: 192.0.2.1, lease_time: 600}
        hosts:
        \(hosts)
        """.write(toFile: lab, atomically: true, encoding: .utf8)
        // The boot loaders and the agent, from Debian packages, with network; the lab then runs offline.
        let (prepared, _, prepareErr) = try KilnProgram.run(["serve", "--config", lab, "--prepare"])
        try #require(prepared == 0, "kiln serve --prepare: \(prepareErr)")

        let namespace = "kilndeploy\(getpid())"
        var setup = [["ip", "netns", "add", namespace]]
        let inside = ["ip", "netns", "exec", namespace]
        setup += [
            ["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "br-lab", "type", "bridge"],
            ["ip", "addr", "add", "192.0.2.1/24", "dev", "br-lab"], ["ip", "link", "set", "br-lab", "up"],
        ].map { inside + $0 }
        for machine in machines {
            setup += [
                ["ip", "tuntap", "add", "dev", machine.tap, "mode", "tap"],
                ["ip", "link", "set", machine.tap, "master", "br-lab"], ["ip", "link", "set", machine.tap, "up"],
            ].map { inside + $0 }
        }
        var processes: [Subprocess] = []
        func cleanUp() async {
            for process in processes.reversed() { await process.stop() }
            _ = try? await Subprocess.output(["ip", "netns", "del", namespace])
        }
        do {
            for argv in setup { try await Subprocess(argv).run() }
            let kiln = Subprocess(
                inside + [KilnProgram.path ?? "kiln", "serve", "--config", lab, "--offline"],
                output: .logFile("\(folder)/kiln.log"))
            try kiln.start()
            processes.append(kiln)
            func kilnLog() -> String { (try? String(contentsOfFile: "\(folder)/kiln.log", encoding: .utf8)) ?? "" }
            let listening = ContinuousClock.now + .seconds(60)
            while !kilnLog().contains("kiln: serving "), ContinuousClock.now < listening, kiln.poll() == nil {
                try await Task.sleep(for: .milliseconds(200))
            }
            try #require(kilnLog().contains("kiln: serving "), "\(kilnLog())")

            let started = ContinuousClock.now
            for machine in machines {
                let process = Subprocess(inside + machine.command(), output: .logFile("\(machine.console).qemu"))
                try process.start()
                processes.append(process)
            }
            // Under TCG on a shared 2-core machine: agent, transfer, reboot, firmware again, first boot.
            let deadline = started + .seconds(1500)
            var waiting = Set(machines.map(\.name))
            while !waiting.isEmpty, ContinuousClock.now < deadline {
                for machine in machines where waiting.contains(machine.name) {
                    if machine.consoleText.contains("\(machine.name) login:") {
                        waiting.remove(machine.name)
                        print("\(machine.name) at its login prompt after \(ContinuousClock.now - started)")
                    }
                }
                try await Task.sleep(for: .seconds(2))
            }
            for machine in machines {
                #expect(
                    machine.consoleText.contains("\(machine.name) login:"),
                    "\(machine.name): \(machine.consoleText.suffix(3000))\nkiln: \(kilnLog().suffix(3000))")
            }

            // kiln's view: deployed, then the next network boot sent to its disk.
            let log = kilnLog()
            for machine in machines {
                #expect(log.contains("lab: \(machine.name) deploy installed"), "\(log.suffix(3000))")
                let afterInstall = log.components(separatedBy: "lab: \(machine.name) deploy installed").last ?? ""
                #expect(
                    afterInstall.contains("lab: \(machine.mac) boots its local disk"),
                    "\(machine.name)'s second network boot was not sent to its disk")
            }
            #expect(log.contains("loader=grub mac=52:54:00:20:00:21"), "\(log.suffix(3000))")
            #expect(
                log.split(separator: "\n").contains {
                    $0.hasPrefix("tftp: sent ") && $0.contains("file=/agent/initrd.img ")
                }, "GRUB loads the agent over TFTP")
            let (_, status) = try await Subprocess.output(inside + ["curl", "-fsS", "http://192.0.2.1/status.json"])
            let hosts = (try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])?["hosts"]
            let states = (hosts as? [[String: Any]] ?? []).map { "\($0["name"] ?? "")=\($0["state"] ?? "")" }
            #expect(states == ["lab-21=installed"], "\(status)")

            // A person looking at the status page: headless Chromium renders it; its DOM lists the host.
            let screenshot = "\(folder)/status.png"
            let chromium = [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(folder)/chromium",
            ]
            let (_, dom) = try await Subprocess.output(
                inside + chromium + ["--dump-dom", "http://192.0.2.1/status"])
            for machine in machines {
                #expect(
                    dom.contains("<tr class=\"installed\" data-host=\"\(machine.name)\">"), "\(dom.suffix(3000))")
            }
            _ = try await Subprocess.output(
                inside + chromium + ["--screenshot=\(screenshot)", "--window-size=1400,400", "http://192.0.2.1/status"])
            #expect(FileManager.default.fileExists(atPath: screenshot), "no screenshot")
            print("status page screenshot: \(screenshot)")
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()

        // Each disk: the root partition fills the 8 GiB disk, its file system checks clean.
        for machine in machines {
            let raw = "\(machine.disk).raw"
            _ = try await Subprocess.output(["qemu-img", "convert", "-O", "raw", machine.disk, raw])
            defer { try? FileManager.default.removeItem(atPath: raw) }
            let (_, rows) = try await Subprocess.output(["partx", "-g", "-o", "START,END", raw])
            let last = rows.split(separator: "\n").last?.split(separator: " ").compactMap { Int($0) } ?? []
            try #require(last.count == 2, "\(rows)")
            #expect(last[1] == 8 * 1024 * 2048 - 34, "\(machine.name): the root partition does not fill the disk")
            // The machine was stopped running, as a power cut stops it: its journal and orphan file
            // are replayed first, as at its next boot (`-p` fails on anything that needs a person),
            // and then the file system must check clean.
            // The partition is copied out to a file of its own: e2fsck opens the device again after
            // replaying the journal, and that second open would not keep a `?offset=`.
            let device = "\(raw).root"
            _ = try await Subprocess.output([
                "dd", "if=\(raw)", "of=\(device)", "bs=1M", "iflag=skip_bytes", "skip=\(last[0] * 512)",
                "conv=sparse", "status=none",
            ])
            defer { try? FileManager.default.removeItem(atPath: device) }
            let (replayed, replay) = try await Subprocess.output(["e2fsck", "-f", "-p", device])
            #expect(replayed == .exited(0) || replayed == .exited(1), "\(machine.name): \(replay)")
            let (fsck, report) = try await Subprocess.output(["e2fsck", "-f", "-n", device])
            #expect(fsck.succeeded, "\(machine.name): \(report)")
        }
    }
}
