import Foundation
import KilnSupport
import SystemPackage

/// Boots a disk image for a person: its serial console on the terminal, a network card on QEMU's
/// user-mode network with the guest's SSH port forwarded to a local port. What `kiln run` does.
package struct ImageRun: Sendable {
    package var image: String
    package var firmware: Firmware = .bios
    package var hardware: VirtualHardware = .virtio
    package var accelerator: Accelerator = .auto
    package var memoryMiB = 1024
    package var cpus = 2
    /// Writes go to the image; otherwise to a temporary overlay that QEMU drops at its end.
    package var writable = false
    /// The machine the image is for: aarch64 images run on QEMU's `virt` board with AAVMF.
    package var architecture = Architecture.x86_64
    /// The QEMU program; nil: the architecture's.
    package var qemu: String?

    package init(image: String) { self.image = image }

    /// The UEFI firmware for the image's architecture: code and variable-store template.
    package var uefiFirmware: (code: String, variables: String) { architecture.uefiFirmware }

    /// What was decided before QEMU starts, for the lines `kiln run` prints.
    package struct Plan: Sendable {
        package var arguments: [String]
        package var format: String
        package var accelerator: Accelerator
        package var sshPort: Int
    }

    /// The QEMU command line: the format told by content, `.auto` resolved (KVM unless /dev/kvm cannot
    /// be opened or `KVMProbe` says it failed here), a free port on 127.0.0.1 for SSH. With UEFI, a
    /// copy of OVMF's variable store is made in `workDirectory`.
    package func plan(workDirectory: String) throws(BuildVMError) -> Plan {
        let format = try DiskFormat.qemuName(of: image)
        try architecture.requireQEMU(qemu)
        let qemu = self.qemu ?? architecture.qemuSystem
        var command = QEMUCommand()
        command.executable = qemu
        command.architecture = architecture
        var accelerator = self.accelerator
        if accelerator == .auto {
            let broken = KVMProbe.recorded(qemu: qemu).map { !$0.works } ?? false
            accelerator = architecture.kvmPossible && QEMUCommand.kvmDeviceUsable() && !broken ? .kvm : .tcg
        }
        command.accelerator = accelerator
        command.memoryMiB = memoryMiB
        command.cpus = cpus
        command.hardware = hardware
        command.disks = [VirtualDisk(path: image, format: format, readOnly: false, snapshot: !writable)]
        let port = try Self.freePort()
        command.interactiveSSHPort = port
        if firmware == .uefi {
            let (code, template) = uefiFirmware
            let copy = "\(workDirectory)/uefi-vars.fd"
            do {
                try FileManager.default.copyItem(atPath: template, toPath: copy)
            } catch {
                throw BuildVMError(
                    .io, "cannot copy the UEFI variable store \(template): \(error.localizedDescription)")
            }
            command.uefi = (code, copy)
        }
        return Plan(arguments: command.arguments, format: format, accelerator: accelerator, sshPort: port)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on now.
    static func freePort() throws(BuildVMError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BuildVMError(.io, "cannot open a socket: \(Errno(rawValue: errno))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            throw BuildVMError(.io, "cannot find a free local port: \(Errno(rawValue: errno))")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts `arguments` with kiln's terminal as its own (same process group, so that it may read
    /// the terminal) and the terminating signals' default actions restored, dying with kiln as every
    /// child does (`Subprocess.dyingWithKiln`, from `SpawnThread`); returns its process id.
    package static func spawn(_ arguments: [String]) throws(BuildVMError) -> pid_t {
        let path = ProcessInfo.processInfo.environment["PATH"]
        guard let program = Subprocess.resolve(arguments[0], path: path) else {
            throw BuildVMError(.qemu, "cannot start \(arguments[0]): program not found")
        }
        let (executable, argv) = Subprocess.dyingWithKiln(program, arguments)
        let (status, pid) = SpawnThread.shared.run { Self.spawnWithTerminal(executable, argv) }
        guard status == 0 else {
            throw BuildVMError(.qemu, "cannot start \(arguments[0]): \(Errno(rawValue: status))")
        }
        return pid
    }

    private static func spawnWithTerminal(_ executable: String, _ arguments: [String]) -> (Int32, pid_t) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM] {
            sigaddset(&defaults, number)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, nil, &attributes, argv, environ)
        return (status, pid)
    }
}
