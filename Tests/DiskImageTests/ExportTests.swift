import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import DiskImage

#if canImport(FoundationXML)
    import FoundationXML
#endif

private let machine = VirtualMachine(
    name: "lab-appliance", summary: "A lab appliance", version: "3", cpus: 2, memoryMiB: 1536, firmware: .uefi,
    osFamily: .debian, osVersion: "12")

private func tool(_ name: String) -> Bool {
    ["/usr/bin/", "/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
}

private func run(_ arguments: [String], in dir: String? = nil) async throws -> (Int32, String) {
    let argv = dir.map { ["sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + arguments } ?? arguments
    let (ended, text) = try await Subprocess.output(argv)
    if case .exited(let code) = ended { return (code, text) }
    return (-1, text)
}

@Suite(.requires(.program("qemu-img"), .program("tar"), .program("xmllint")))
struct ExportTests {
    @Test(arguments: [OVFDescriptor.Profile.vsphere, .virtualbox])
    func ovaHoldsDescriptorManifestAndDiskInOrder(_ profile: OVFDescriptor.Profile) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let ova = "\(dir)/lab.ova"
        try Exporter.ova(try DiskImage.open(source), machine: machine, profile: profile, to: ova)

        let (listed, names) = try await run(["tar", "-tf", ova])
        #expect(listed == 0)
        #expect(names.split(separator: "\n") == ["lab-appliance.ovf", "lab-appliance.mf", "lab-appliance-disk1.vmdk"])
        let (extracted, _) = try await run(["tar", "-xf", ova], in: dir)
        #expect(extracted == 0)

        // The manifest's digests are those of the files (sha256sum is the judge).
        let (summed, sums) = try await run(["sha256sum", "lab-appliance.ovf", "lab-appliance-disk1.vmdk"], in: dir)
        #expect(summed == 0)
        let manifest = try String(contentsOfFile: "\(dir)/lab-appliance.mf", encoding: .utf8)
        for line in sums.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            #expect(manifest.contains("SHA256(\(parts[1]))= \(parts[0])"))
        }

        // The disk is a streamOptimized VMDK with the source's content.
        let vmdk = "\(dir)/lab-appliance-disk1.vmdk"
        #expect(try await Fixture.qemuImg(["check", "-f", "vmdk", vmdk]).0 == 0)
        #expect(try await Fixture.qemuImg(["compare", "-f", "raw", "-F", "vmdk", source, vmdk]).0 == 0)

        let ovf = "\(dir)/lab-appliance.ovf"
        let (wellFormed, lint) = try await run(["xmllint", "--noout", ovf])
        #expect(wellFormed == 0, "\(lint)")
        try checkRequiredOVFElements(
            ovf, vmdkSize: try #require(try FileManager.default.attributesOfItem(atPath: vmdk)[.size] as? UInt64))
    }

    /// No DMTF schema can be fetched here, so every element DSP0243 1.0 requires, and every value the
    /// description sets, is checked by XPath instead.
    private func checkRequiredOVFElements(_ path: String, vmdkSize: UInt64) throws {
        let doc = try XMLDocument(contentsOf: URL(fileURLWithPath: path), options: [])
        func nodes(_ xpath: String) throws -> [XMLNode] { try doc.nodes(forXPath: xpath) }
        func text(_ xpath: String) throws -> String? { try nodes(xpath).first?.stringValue }
        let root = try #require(doc.rootElement())
        #expect(root.name == "Envelope")
        #expect(root.uri == "http://schemas.dmtf.org/ovf/envelope/1")

        let file = try #require(
            try nodes("/*[local-name()='Envelope']/*[local-name()='References']/*[local-name()='File']").first
                as? XMLElement)
        #expect(file.attribute(forName: "ovf:href")?.stringValue == "lab-appliance-disk1.vmdk")
        #expect(file.attribute(forName: "ovf:size")?.stringValue == "\(vmdkSize)")
        let fileID = try #require(file.attribute(forName: "ovf:id")?.stringValue)

        let disk = try #require(
            try nodes("//*[local-name()='DiskSection']/*[local-name()='Disk']").first as? XMLElement)
        #expect(disk.attribute(forName: "ovf:fileRef")?.stringValue == fileID)
        #expect(disk.attribute(forName: "ovf:capacity")?.stringValue == "\(67 * 1024 * 1024 + 1536)")
        #expect(disk.attribute(forName: "ovf:format")?.stringValue?.hasSuffix("#streamOptimized") == true)
        let diskID = try #require(disk.attribute(forName: "ovf:diskId")?.stringValue)

        for section in [
            "DiskSection", "NetworkSection", "VirtualSystem", "OperatingSystemSection", "VirtualHardwareSection",
            "ProductSection",
        ] {
            #expect(
                try !nodes("//*[local-name()='\(section)']/*[local-name()='Info']").isEmpty, "\(section) has its Info")
        }
        #expect(
            try !nodes("//*[local-name()='NetworkSection']/*[local-name()='Network']/@*[local-name()='name']").isEmpty)
        #expect(try text("//*[local-name()='VirtualSystem']/@*[local-name()='id']") == "lab-appliance")
        #expect(try text("//*[local-name()='OperatingSystemSection']/@*[local-name()='id']") == "96")

        func item(_ type: Int, _ field: String) throws -> String? {
            try text("//*[local-name()='Item'][*[local-name()='ResourceType']='\(type)']/*[local-name()='\(field)']")
        }
        #expect(try item(3, "VirtualQuantity") == "2")
        #expect(try item(4, "VirtualQuantity") == "1536")
        #expect(try item(4, "AllocationUnits") == "byte * 2^20")
        #expect(try item(17, "HostResource") == "ovf:/disk/\(diskID)")
        #expect(try item(10, "Connection") != nil)
        #expect(
            try !nodes(
                "//*[local-name()='Item'][*[local-name()='ResourceType']='6' or *[local-name()='ResourceType']='20']"
            ).isEmpty)
        let instanceIDs = try nodes("//*[local-name()='Item']/*[local-name()='InstanceID']").compactMap(\.stringValue)
        #expect(Set(instanceIDs).count == instanceIDs.count, "InstanceIDs are unique")
        #expect(try text("//*[local-name()='ProductSection']/*[local-name()='Version']") == "3")
    }

    /// VirtualBox reads the firmware only from its own machine section; the disk it attaches there must
    /// be the DiskSection's disk (matched by vbox:uuid), and the same build gives the same OVA.
    @Test(arguments: [Firmware.bios, .uefi])
    func virtualBoxProfileCarriesItsMachineSection(_ firmware: Firmware) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        var m = machine
        m.firmware = firmware
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: false)
            let ova = "\(dir)/\(name)/lab.ova"
            try Exporter.ova(try DiskImage.open(source), machine: m, profile: .virtualbox, to: ova)
            #expect(try await run(["tar", "-xf", "lab.ova"], in: "\(dir)/\(name)").0 == 0)
        }
        // The same build gives the same members (tar's mtimes follow SOURCE_DATE_EPOCH, unset here).
        for member in ["lab-appliance.ovf", "lab-appliance-disk1.vmdk"] {
            #expect(FileManager.default.contentsEqual(atPath: "\(dir)/a/\(member)", andPath: "\(dir)/b/\(member)"))
        }
        let ovf = "\(dir)/a/lab-appliance.ovf"
        let (wellFormed, lint) = try await run(["xmllint", "--noout", ovf])
        #expect(wellFormed == 0, "\(lint)")
        func xpath(_ expression: String) async throws -> String {
            let (code, text) = try await run(["xmllint", "--xpath", expression, ovf])
            #expect(code == 0, "xmllint --xpath \(expression): \(text)")
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let machineSection = "//*[local-name()='VirtualSystem']/*[local-name()='Machine']"
        #expect(
            try await xpath("namespace-uri(\(machineSection))") == "http://www.virtualbox.org/ovf/machine")
        #expect(try await xpath("string(\(machineSection)/@*[local-name()='required'])") == "false")
        let hardware = "\(machineSection)/*[local-name()='Hardware']"
        #expect(
            try await xpath("string(\(hardware)/*[local-name()='Firmware']/@type)")
                == (firmware == .uefi ? "EFI" : "BIOS"))
        #expect(try await xpath("string(\(hardware)/*[local-name()='Memory']/@RAMSize)") == "1536")
        #expect(try await xpath("string(\(hardware)/*[local-name()='CPU']/@count)") == "2")
        let attached = try await xpath(
            "string(\(hardware)/*[local-name()='StorageControllers']//*[local-name()='Image']/@uuid)")
        let diskUUID = try await xpath("string(//*[local-name()='Disk']/@*[local-name()='uuid'])")
        #expect(!attached.isEmpty && attached == diskUUID)
        #expect(try await xpath("string(//*[local-name()='OSType'])") == "Debian_64")
    }

    @Test func gceTarballIsGNUTarWithDiskRaw() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let tarball = "\(dir)/image.tar.gz"
        try Exporter.gce(try DiskImage.open(source), to: tarball)
        let (listed, names) = try await run(["tar", "-tzf", tarball])
        #expect(listed == 0)
        #expect(names == "disk.raw\n")
        // GNU tar's header magic is "ustar  \0" (POSIX ustar has "ustar\000").
        let (decoded, magic) = try await run([
            "sh", "-c", "gzip -dc \"$0\" | head -c 265 | tail -c 8 | od -An -c", tarball,
        ])
        #expect(decoded == 0)
        #expect(
            magic.split(separator: " ", omittingEmptySubsequences: true) == ["u", "s", "t", "a", "r", "\\0"]
                || magic.contains("u   s   t   a   r          \\0"), "\(magic)")
        #expect(try await run(["tar", "-xzf", tarball], in: dir).0 == 0)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: "\(dir)/disk.raw")[.size] as? UInt64)
        #expect(size == 1 << 30)
        #expect(try await Fixture.qemuImg(["compare", "-f", "raw", "-F", "raw", source, "\(dir)/disk.raw"]).0 == 0)
    }

    @Test func vagrantBoxForLibvirt() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        let source = try Fixture.sampleRaw(in: dir)
        let box = "\(dir)/lab.box"
        try Exporter.vagrant(try DiskImage.open(source), machine: machine, to: box)
        let (listed, names) = try await run(["tar", "-tzf", box])
        #expect(listed == 0)
        #expect(Set(names.split(separator: "\n")) == ["metadata.json", "Vagrantfile", "box.img"])
        #expect(try await run(["tar", "-xzf", box], in: dir).0 == 0)
        let metadata =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/metadata.json")))
            as? [String: Any]
        #expect(metadata?["provider"] as? String == "libvirt")
        #expect(metadata?["format"] as? String == "qcow2")
        #expect(metadata?["virtual_size"] as? Int == 1)
        #expect(try await Fixture.qemuImg(["check", "-f", "qcow2", "\(dir)/box.img"]).0 == 0)
        #expect(try await Fixture.qemuImg(["compare", "-f", "raw", "-F", "qcow2", source, "\(dir)/box.img"]).0 == 0)
    }

    @Test(
        .requires(tool("virt-xml-validate"), "virt-xml-validate (libvirt-clients)"),
        arguments: [Firmware.bios, .uefi])
    func libvirtDomainValidates(_ firmware: Firmware) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        var m = machine
        m.firmware = firmware
        let path = "\(dir)/domain.xml"
        try LibvirtDomain(machine: m, diskPath: "/var/lib/libvirt/images/lab & co.qcow2", diskFormat: .qcow2).xml.write(
            toFile: path, atomically: true, encoding: .utf8)
        let (code, text) = try await run(["virt-xml-validate", path, "domain"])
        #expect(code == 0, "\(text)")
    }

    /// An arm64 machine's domain: QEMU's virt board, AAVMF as its loader, a GIC and no APIC, the
    /// host's CPU; libvirt's schema accepts it.
    @Test(.requires(tool("virt-xml-validate"), "virt-xml-validate (libvirt-clients)"))
    func arm64LibvirtDomainIsAVirtMachineWithAAVMF() async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        var m = machine
        m.arch = .aarch64
        let xml = LibvirtDomain(machine: m, diskPath: "/var/lib/libvirt/images/arm.qcow2", diskFormat: .qcow2).xml
        #expect(xml.contains("<type arch=\"aarch64\" machine=\"virt\">hvm</type>"))
        #expect(xml.contains("<loader readonly=\"yes\" type=\"pflash\">/usr/share/AAVMF/AAVMF_CODE.fd</loader>"))
        #expect(xml.contains("<nvram template=\"/usr/share/AAVMF/AAVMF_VARS.fd\"/>"))
        #expect(xml.contains("<gic version=\"3\"/>") && !xml.contains("<apic/>"))
        #expect(xml.contains("<cpu mode=\"host-passthrough\"/>"))
        let path = "\(dir)/domain.xml"
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
        let (code, text) = try await run(["virt-xml-validate", path, "domain"])
        #expect(code == 0, "\(text)")
    }

    /// An arm64 machine's OVF: UEFI, its family's CIM type described as ARM, no VMware guest id
    /// (those name x86 guests); it stays well-formed XML.
    @Test func arm64OVFSaysUEFIAndARM() async throws {
        var m = machine
        m.arch = .aarch64
        let disk = ExportDisk(path: "/dev/null", fileName: "arm-disk1.vmdk", capacity: 1 << 30)
        let xml = OVFDescriptor(machine: m, profile: .vsphere, disks: [(disk, 512)]).xml
        #expect(xml.contains("<Description>Debian ARM 64-bit</Description>"))
        #expect(!xml.contains("vmw:osType"))
        #expect(xml.contains("vmw:key=\"firmware\" vmw:value=\"efi\""))
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        try xml.write(toFile: "\(dir)/arm.ovf", atomically: true, encoding: .utf8)
        let (code, text) = try await run(["xmllint", "--noout", "\(dir)/arm.ovf"])
        #expect(code == 0, "\(text)")
    }
}
