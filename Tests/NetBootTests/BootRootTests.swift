import Foundation
import Testing

@testable import NetBoot

@Suite("Boot root containment")
struct BootRootTests {
    /// root/{pxelinux.0, sub/menu, inside -> pxelinux.0, outside -> /etc/passwd, subdir -> sub, up -> ..}
    private func makeRoot() throws -> (BootRoot, URL) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-root-\(UUID().uuidString)")
        let root = base.appendingPathComponent("root")
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("boot".utf8).write(to: root.appendingPathComponent("pxelinux.0"))
        try Data("menu".utf8).write(to: root.appendingPathComponent("sub/menu"))
        try Data("secret".utf8).write(to: base.appendingPathComponent("secret"))
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("inside").path, withDestinationPath: "pxelinux.0")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("outside").path, withDestinationPath: "../secret")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("subdir").path, withDestinationPath: "sub")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("up").path, withDestinationPath: "..")
        return (try BootRoot(root.path), base)
    }

    @Test func namesAreMadeRelative() throws {
        let (root, base) = try makeRoot()
        defer { try? FileManager.default.removeItem(at: base) }
        #expect(try root.relativePath(for: Array("/sub/menu".utf8)) == "sub/menu")
        #expect(try root.relativePath(for: Array("sub\\menu".utf8)) == "sub/menu")
        #expect(try root.relativePath(for: Array("./sub//menu".utf8)) == "sub/menu")
        #expect(try root.relativePath(for: Array((root.path + "/sub/menu").utf8)) == "sub/menu")
    }

    @Test(arguments: ["../secret", "sub/../../secret", "..\\secret", "sub\\..\\..\\secret", "", "/", "a\u{1}b", ".."])
    func escapingNamesAreRefused(_ name: String) throws {
        let (root, base) = try makeRoot()
        defer { try? FileManager.default.removeItem(at: base) }
        #expect(throws: NetBootError.self) { try root.relativePath(for: Array(name.utf8)) }
    }

    @Test func nonUTF8NamesAreRefused() throws {
        let (root, base) = try makeRoot()
        defer { try? FileManager.default.removeItem(at: base) }
        #expect(throws: NetBootError.self) { try root.relativePath(for: [0x66, 0xFF, 0x66]) }
    }

    @Test func symlinksMayPointInsideButNotOut() throws {
        let (root, base) = try makeRoot()
        defer { try? FileManager.default.removeItem(at: base) }
        let inside = try root.open("inside")
        close(inside.descriptor)
        #expect(inside.size == 4)
        let through = try root.open("subdir/menu")
        close(through.descriptor)
        for name in ["outside", "up/secret", "up/root/outside"] {
            let error = #expect(throws: NetBootError.self) { try root.open(name) }
            #expect(error?.code == .refused)
        }
        #expect((#expect(throws: NetBootError.self) { try root.open("missing") })?.code == .notFound)
        #expect((#expect(throws: NetBootError.self) { try root.open("sub") })?.code == .refused)
    }
}
