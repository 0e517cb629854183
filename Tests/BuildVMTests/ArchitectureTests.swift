import KilnSupport
import Testing

@testable import BuildVM

/// What differs for an arm64 guest before any QEMU runs: its QEMU command line, kernel command
/// line, packages, and the error when its emulator is missing.
@Suite struct GuestArchitectureTests {
    @Test func anArm64GuestRunsOnTheVirtBoardWithAPL011Console() {
        var command = QEMUCommand()
        command.architecture = .aarch64
        command.executable = Architecture.aarch64.qemuSystem
        command.kernel = ("vmlinuz", "initrd.img", GuestRunner.kernelArguments(.aarch64))
        command.disks = [VirtualDisk(path: "disk.raw", format: "raw", readOnly: false)]
        let argv = command.arguments
        #expect(argv.first == "qemu-system-aarch64")
        #expect(
            argv.joined(separator: " ").contains(
                "-machine virt -accel tcg,thread=multi -cpu max,pauth-impdef=on,sve=off,sme=off"))
        #expect(argv.contains("virtio-blk-pci,drive=disk0"))
        let append = GuestRunner.kernelArguments(.aarch64)
        #expect(append.hasPrefix("console=ttyAMA0,115200 "))
        #expect(!append.contains("i8042") && !append.contains("tsc=") && !append.contains("8250"))
        #expect(GuestRunner.kernelArguments(.x86_64).hasPrefix("console=ttyS0,115200 "))
    }

    /// Under TCG an x86_64 guest's vCPUs share one host thread: with a thread each, Linux's live code
    /// patching now and then met a stale translation on the other vCPU ("Oops: int3", a panic at boot).
    @Test func anX86GuestUnderTCGRunsItsVCPUsOnOneThread() {
        var command = QEMUCommand()
        command.accelerator = .tcg
        command.cpus = 2
        command.disks = [VirtualDisk(path: "disk.raw", format: "raw", readOnly: false)]
        let line = command.arguments.joined(separator: " ")
        #expect(line.contains("-accel tcg,thread=single -cpu max"))
        #expect(line.contains("-smp 2"))
        command.accelerator = .kvm
        #expect(command.arguments.joined(separator: " ").contains("-accel kvm -cpu host"))
    }

    @Test func anArm64GuestIsMadeFromArm64Packages() {
        let packages = BuilderGuestRecipe.debianPackages(for: .aarch64)
        #expect(packages.contains("linux-image-cloud-arm64") && !packages.contains("linux-image-cloud-amd64"))
        #expect(BuilderGuestRecipe.debianPackages == BuilderGuestRecipe.debianPackages(for: .x86_64))
        let assembler = BuilderGuestAssembler(recipe: BuilderGuestRecipe(packages: [], architecture: .aarch64))
        #expect(assembler.libraryDirectories.prefix(2) == ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"])
    }

    @Test func aMissingEmulatorNamesItsDebianPackage() {
        #expect(Architecture.aarch64.qemuPackage == "qemu-system-arm")
        #expect(Architecture.x86_64.qemuPackage == "qemu-system-x86")
        do {
            try Architecture.aarch64.requireQEMU("/nonexistent/qemu-system-aarch64")
            Issue.record("a missing QEMU was accepted")
        } catch {
            #expect(error.code == .qemu)
            #expect(error.message.contains("install Debian's qemu-system-arm package"), "\(error.message)")
        }
    }

    @Test func kvmIsNeverTriedForAnotherArchitecture() {
        let other: Architecture = Architecture.host == .aarch64 ? .x86_64 : .aarch64
        #expect(!other.kvmPossible)
    }
}
