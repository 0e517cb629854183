import Crypto
import Foundation
import KilnSupport

/// Packages for other hypervisors and clouds, made from a finished image.
///
/// `timestamp` is the time the packages record (archive members, the VHD or VMDK inside), as a Unix
/// time; nil is now. A build gives its SOURCE_DATE_EPOCH, so that the same inputs give the same bytes.
package enum Exporter {
    /// An OVA: the OVF descriptor first, then the manifest of SHA-256 digests, then the
    /// streamOptimized VMDK, in a USTAR archive (DSP0243 1.0, "OVF Packages").
    package static func ova(
        _ source: any DiskReader, machine: VirtualMachine, profile: OVFDescriptor.Profile, to destination: String,
        timestamp: UInt64? = nil, progress: ProgressSink = .none
    ) throws(DiskImageError) {
        try withScratch(beside: destination) { scratch throws(DiskImageError) in
            let diskName = "\(machine.name)-disk1.vmdk"
            let vmdk = "\(scratch)/\(diskName)"
            try ImageConverter.convert(
                source, to: vmdk,
                options: ExportOptions(format: .vmdk, subformat: .streamOptimized, timestamp: timestamp),
                progress: progress
            )
            let disk = ExportDisk(path: vmdk, fileName: diskName, capacity: source.virtualSize.roundedUp(to: 512))
            let vmdkSize = try ImageFile(reading: vmdk).size
            let ovf = Array(OVFDescriptor(machine: machine, profile: profile, disks: [(disk, vmdkSize)]).xml.utf8)
            let ovfName = "\(machine.name).ovf"
            let manifest =
                "SHA256(\(ovfName))= \(hex(SHA256.hash(data: ovf)))\nSHA256(\(diskName))= \(try FileDigest(of: vmdk).sha256)\n"
            progress(.step("package", "packing \(URL(fileURLWithPath: destination).lastPathComponent)"))
            try writeArchive(destination, format: .ustar, gzip: false, timestamp: timestamp) {
                archive throws(DiskImageError) in
                try archive.add(ovfName, content: ovf)
                try archive.add("\(machine.name).mf", content: Array(manifest.utf8))
                try archive.addFile(diskName, from: vmdk)
            }
        }
    }

    /// A GCE image: `disk.raw` in a gzip-compressed GNU tar, as Compute Engine imports.
    package static func gce(
        _ source: any DiskReader, to destination: String, timestamp: UInt64? = nil, progress: ProgressSink = .none
    ) throws(DiskImageError) {
        // Compute Engine wants a whole number of GiB.
        let size = source.virtualSize.roundedUp(to: 1 << 30)
        progress(.step("package", "writing disk.raw into \(URL(fileURLWithPath: destination).lastPathComponent)"))
        try writeArchive(destination, format: .gnutar, gzip: true, timestamp: timestamp) {
            archive throws(DiskImageError) in
            try archive.add("disk.raw", size: size) { buffer, offset throws(DiskImageError) in
                try source.read(into: buffer, at: offset)
            } progress: { done in
                progress(.progress("package", completed: Int64(done), total: Int64(size)))
            }
        }
    }

    /// A Vagrant box for the libvirt provider: metadata.json, Vagrantfile and box.img (qcow2) in a tar.gz.
    package static func vagrant(
        _ source: any DiskReader, machine: VirtualMachine, to destination: String, timestamp: UInt64? = nil,
        progress: ProgressSink = .none
    ) throws(DiskImageError) {
        try withScratch(beside: destination) { scratch throws(DiskImageError) in
            let image = "\(scratch)/box.img"
            try ImageConverter.convert(
                source, to: image, options: ExportOptions(format: .qcow2, timestamp: timestamp), progress: progress)
            let gib = (source.virtualSize + (1 << 30) - 1) >> 30
            let metadata = "{\n  \"provider\": \"libvirt\",\n  \"format\": \"qcow2\",\n  \"virtual_size\": \(gib)\n}\n"
            let vagrantfile = """
                # Made by kiln for the vagrant-libvirt provider.
                Vagrant.configure("2") do |config|
                  config.vm.provider :libvirt do |libvirt|
                    libvirt.driver = "kvm"
                    libvirt.cpus = \(machine.cpus)
                    libvirt.memory = \(machine.memoryMiB)
                    libvirt.loader = \(machine.firmware == .uefi ? "\"/usr/share/OVMF/OVMF_CODE.fd\"" : "nil")
                  end
                end

                """
            progress(.step("package", "packing \(URL(fileURLWithPath: destination).lastPathComponent)"))
            try writeArchive(destination, format: .ustar, gzip: true, timestamp: timestamp) {
                archive throws(DiskImageError) in
                try archive.add("metadata.json", content: Array(metadata.utf8))
                try archive.add("Vagrantfile", content: Array(vagrantfile.utf8))
                try archive.addFile("box.img", from: image)
            }
        }
    }

    // MARK: helpers

    private static func writeArchive(
        _ destination: String, format: ExportArchive.Format, gzip: Bool, timestamp: UInt64?,
        _ body: (ExportArchive) throws(DiskImageError) -> Void
    ) throws(DiskImageError) {
        let output: AtomicOutput
        do { output = try AtomicOutput(destination) } catch { throw DiskImageError(.io, error.description) }
        do {
            let archive = try ExportArchive(
                path: output.temporaryPath, displayName: destination, format: format, gzip: gzip, timestamp: timestamp)
            try body(archive)
            try archive.close()
        } catch {
            output.discard()
            throw error
        }
        do { try output.commit() } catch { throw DiskImageError(.io, error.description) }
    }

    /// A scratch directory beside the destination (same file system), removed afterwards.
    private static func withScratch(beside destination: String, _ body: (String) throws(DiskImageError) -> Void)
        throws(DiskImageError)
    {
        let dir = URL(fileURLWithPath: destination).deletingLastPathComponent().path
        AtomicOutput.removeLeftovers(in: dir, prefix: ".kiln-export-")
        let scratch = "\(dir)/.kiln-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do { try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false) } catch {
            throw DiskImageError(.io, "cannot create a scratch directory beside \(destination)")
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try body(scratch)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format2: $0) }.joined()
    }
}
