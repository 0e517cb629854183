import Foundation
import KilnSupport
import Testing

@testable import Appliance

/// `hardware.arch`: its default, what follows from it (variables, firmware, console), its errors,
/// and `kiln build --arch` overriding it.
@Suite struct ArchitectureTests {
    private func load(_ text: String, arch: Architecture? = nil) throws -> Appliance {
        let workspace = try Workspace()
        let file = try workspace.write("a.yaml", text)
        return try ApplianceLoader(arch: arch).load(file)
    }

    private func errors(_ text: String, arch: Architecture? = nil) throws -> [String] {
        let workspace = try Workspace()
        let file = try workspace.write("a.yaml", text)
        do {
            _ = try ApplianceLoader(arch: arch).load(file)
            return []
        } catch {
            return error.diagnostics.map { "\($0.mark.line):\($0.mark.column): \($0.message)" }
        }
    }

    private let variables = "variables:\n  where: \"#ARCH#/#BASE_ARCH#\"\nsummary: \"#where#\"\n"

    @Test func x86_64ByDefault() throws {
        let appliance = try load(minimalDescription + variables)
        #expect(appliance.hardware.arch == .x86_64)
        #expect(appliance.hardware.firmware == .hybrid)
        #expect(appliance.console == SerialConsole(device: "ttyS0", speed: 115_200))
        #expect(appliance.summary == "x86_64/x86_64")
    }

    @Test func aarch64BootsWithUEFIOnAPL011Console() throws {
        let appliance = try load(minimalDescription + variables + "hardware:\n  arch: aarch64\n")
        #expect(appliance.hardware.arch == .aarch64)
        #expect(appliance.hardware.arch.debianName == "arm64")
        #expect(appliance.hardware.firmware == .uefi)
        #expect(appliance.console == SerialConsole(device: "ttyAMA0", speed: 115_200))
        #expect(appliance.summary == "aarch64/aarch64")
        // Written uefi is fine; a console written explicitly is kept.
        let explicit = try load(
            minimalDescription + "hardware:\n  arch: aarch64\n  firmware: uefi\nconsole: ttyS0,9600\n")
        #expect(explicit.hardware.firmware == .uefi)
        #expect(explicit.console == SerialConsole(device: "ttyS0", speed: 9600))
    }

    @Test func theOverrideWinsOverTheDescription() throws {
        let arm = try load(minimalDescription + variables, arch: .aarch64)
        #expect(arm.hardware.arch == .aarch64 && arm.hardware.firmware == .uefi && arm.summary == "aarch64/aarch64")
        let pc = try load(minimalDescription + variables + "hardware:\n  arch: aarch64\n", arch: .x86_64)
        #expect(pc.hardware.arch == .x86_64 && pc.hardware.firmware == .hybrid && pc.summary == "x86_64/x86_64")
    }

    @Test func aParentsArchIsInherited() throws {
        let workspace = try Workspace()
        try workspace.write(
            "base.yaml",
            minimalDescription.replacingOccurrences(of: "test", with: "base") + "hardware:\n  arch: aarch64\n")
        let child = try workspace.write("child.yaml", "name: child\nappliances: [base]\n")
        #expect(try ApplianceLoader().load(child).hardware.arch == .aarch64)
    }

    @Test func biosOrHybridWrittenForAarch64IsAnError() throws {
        #expect(
            try errors(minimalDescription + "hardware:\n  arch: aarch64\n  firmware: bios\n") == [
                "7:13: hardware.firmware 'bios' cannot boot aarch64: arm64 machines boot with UEFI only "
                    + "(leave firmware out, or write uefi)"
            ])
        // The override meets a firmware the description wrote for x86_64.
        #expect(
            try errors(minimalDescription + "hardware:\n  firmware: hybrid\n", arch: .aarch64) == [
                "6:13: hardware.firmware 'hybrid' cannot boot aarch64: arm64 machines boot with UEFI only "
                    + "(leave firmware out, or write uefi)"
            ])
    }

    @Test func unknownArchitecturesAreErrors() throws {
        #expect(
            try errors(minimalDescription + "hardware:\n  arch: arm64\n") == [
                "6:9: hardware.arch 'arm64' must be x86_64 or aarch64 ('arm64' is Debian's name for aarch64)"
            ])
        #expect(
            try errors(minimalDescription + "hardware:\n  arch: riscv64\n") == [
                "6:9: hardware.arch 'riscv64' must be x86_64 or aarch64"
            ])
    }

    @Test func theWriterKeepsArchAndLeavesOutItsDefaults() throws {
        let appliance = try load(minimalDescription + "hardware:\n  arch: aarch64\n")
        let text = ApplianceWriter.yaml(appliance)
        #expect(text.contains("arch: aarch64"))
        #expect(!text.contains("firmware:"), "\(text)")
        #expect(!text.contains("console:"), "\(text)")
        let workspace = try Workspace()
        let file = try workspace.write("again.yaml", text)
        let again = try ApplianceLoader().load(file)
        #expect(again.hardware.arch == .aarch64 && again.hardware.firmware == .uefi)
        #expect(again.console == appliance.console)
    }

    @Test func theSchemaListsTheArchitectures() throws {
        #expect(ApplianceSchema.json.contains("\"aarch64\""))
    }
}
