import KilnSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Where the guest's CPU runs.
package enum Accelerator: String, Sendable, CaseIterable {
    /// KVM if a guest boots under it within a short deadline, else TCG with a warning.
    case auto
    /// KVM or a clear failure.
    case kvm
    /// QEMU's software emulation, multi-threaded.
    case tcg
}

/// A disk given to the guest (as virtio-blk unless the command's hardware says otherwise).
struct VirtualDisk: Sendable {
    var path: String
    /// QEMU's `format=` ("raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi").
    var format: String
    var readOnly: Bool
    /// Writes go to a temporary overlay, never to the file (`kiln test`).
    var snapshot: Bool = false
    /// Visible in the guest as `/sys/block/vdX/serial`.
    var serial: String?
}

/// The QEMU command line, assembled in one place.
struct QEMUCommand: Sendable {
    var executable = "qemu-system-x86_64"
    /// The guest's architecture: x86_64 machines are PCs (`hardware` picks q35 or i440FX), aarch64
    /// machines QEMU's `virt` board, with its PCIe bus for the virtio disks and a PL011 console.
    var architecture = Architecture.x86_64
    var accelerator: Accelerator = .tcg
    var memoryMiB = 1024
    var cpus = 2
    /// Direct kernel boot: kernel, initramfs, command line.
    var kernel: (kernel: String, initramfs: String, arguments: String)?
    var disks: [VirtualDisk] = []
    /// The guest's real-time clock at start, seconds since the epoch; it then runs with the guest.
    var clockStart: Int?
    /// OVMF code and a writable copy of its variables, for UEFI.
    var uefi: (code: String, variables: String)?
    /// The disk controller and network card the guest sees.
    var hardware: VirtualHardware = .virtio
    /// A file for what SeaBIOS prints on its debug port (0x402): the serial console never sees its
    /// "No bootable device.".
    var firmwareLog: String?
    /// `kiln run`: the serial console and QEMU's monitor share the terminal (Ctrl-a x quits, Ctrl-a c
    /// switches to the monitor), the guest may reboot, and it gets a network card on QEMU's user-mode
    /// network with the guest's SSH port forwarded to this port on 127.0.0.1.
    var interactiveSSHPort: Int?

    var arguments: [String] {
        let machine = architecture == .aarch64 ? "virt" : hardware.machineType
        var argv = [executable, "-nodefaults", "-no-user-config", "-machine", machine]
        switch accelerator {
        case .kvm:
            argv += ["-accel", "kvm", "-cpu", "host"]
        case .tcg, .auto:
            // An x86_64 guest's vCPUs take turns on one host thread (thread=single). With one thread
            // per vCPU, Linux's live code patching (an int3 written over an instruction while the
            // other CPU runs it, then the new bytes) now and then reached the other vCPU as a stale
            // translation: "Oops: int3" in sched_clock_cpu and a panic a second into boot (twice in two
            // whole test runs of dozens of boots, the builder guest's and an image's). x86 promises coherent
            // self-modifying code, which QEMU's multi-threaded TCG only approximates; arm64's
            // explicit cache maintenance it follows exactly, so an arm64 guest keeps a thread per
            // vCPU. The build's guest work is mostly one process at a time (dpkg, mke2fs), so little
            // is lost. On arm64, what costs much under TCG and a guest does without: pointer
            // authentication with the architected QARMA5 cipher (QEMU's own cipher, pauth-impdef,
            // does the same job), and SVE and SME, whose 2048-bit vectors glibc's string functions
            // would otherwise pick.
            let cpu = architecture == .aarch64 ? "max,pauth-impdef=on,sve=off,sme=off" : "max"
            let threads = architecture == .aarch64 ? "multi" : "single"
            argv += ["-accel", "tcg,thread=\(threads)", "-cpu", cpu]
        }
        argv += ["-m", String(memoryMiB), "-smp", String(cpus)]
        if let port = interactiveSSHPort {
            argv += ["-display", "none", "-chardev", "stdio,id=console,mux=on,signal=off"]
            argv += ["-serial", "chardev:console", "-mon", "chardev=console,mode=readline"]
            argv += ["-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:\(port)-:22"]
            argv += ["-device", "\(hardware.networkCard ?? "virtio-net-pci"),netdev=net0"]
        } else {
            argv += Self.batchConsoleAndNetwork(hardware)
        }
        if let firmwareLog {
            argv += ["-chardev", "file,id=firmware,path=\(Self.escape(firmwareLog))"]
            argv += ["-device", "isa-debugcon,iobase=0x402,chardev=firmware"]
        }
        if let clockStart { argv += ["-rtc", "base=\(Self.rtcBase(clockStart)),clock=vm"] }
        if let uefi {
            argv += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=\(Self.escape(uefi.code))"]
            argv += ["-drive", "if=pflash,format=raw,unit=1,file=\(Self.escape(uefi.variables))"]
        }
        if let kernel {
            argv += ["-kernel", kernel.kernel, "-initrd", kernel.initramfs, "-append", kernel.arguments]
        }
        if hardware.diskBus == .pvscsi { argv += ["-device", "pvscsi,id=scsi0"] }
        for (index, disk) in disks.enumerated() {
            var drive = "file=\(Self.escape(disk.path)),format=\(disk.format),if=none,id=disk\(index),cache=unsafe"
            if disk.readOnly { drive += ",readonly=on" }
            if disk.snapshot { drive += ",snapshot=on" }
            if !disk.readOnly { drive += ",discard=unmap" }
            argv += ["-drive", drive]
            var device: String
            switch hardware.diskBus {
            case .virtio: device = "virtio-blk-pci,drive=disk\(index)"
            case .pvscsi: device = "scsi-hd,drive=disk\(index),bus=scsi0.0,channel=0,scsi-id=\(index),lun=0"
            // q35's own ICH9 AHCI controller (00:1f.2), one SATA port per disk.
            case .ahci: device = "ide-hd,drive=disk\(index),bus=ide.\(index)"
            // i440FX's PIIX IDE: two channels of two units each.
            case .ide: device = "ide-hd,drive=disk\(index),bus=ide.\(index / 2),unit=\(index % 2)"
            }
            if index == 0 && kernel == nil { device += ",bootindex=0" }
            if let serial = disk.serial { device += ",serial=\(serial)" }
            argv += ["-device", device]
        }
        return argv
    }

    /// No window, no monitor; the serial console goes to standard output, which kiln reads; QEMU
    /// ends instead of rebooting. A network card gets QEMU's user-mode network: its DHCP server
    /// answers the guest, and restrict=on keeps every packet inside QEMU, so a booted image reaches
    /// nothing outside.
    static func batchConsoleAndNetwork(_ hardware: VirtualHardware) -> [String] {
        var argv = ["-display", "none", "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
        argv.append("-no-reboot")
        if let card = hardware.networkCard {
            argv += ["-netdev", "user,id=net0,restrict=on", "-device", "\(card),netdev=net0"]
        } else {
            argv += ["-nic", "none"]
        }
        return argv
    }

    /// `-rtc base=` takes UTC as "2006-06-17T16:01:21".
    static func rtcBase(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// QEMU's option syntax doubles a comma inside a value.
    static func escape(_ value: String) -> String {
        value.split(separator: ",", omittingEmptySubsequences: false).joined(separator: ",,")
    }

    /// Can this user open /dev/kvm for reading and writing? (Necessary, not sufficient: guests hang
    /// in nested KVM on some hosts, which only a boot finds out.)
    static func kvmDeviceUsable() -> Bool {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }
}
