import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import Ext4

/// Extended attributes in the inode and in a block of their own, read back by debugfs, which turns
/// ext4's ACLs back into the VFS form.
@Suite(.requires(.program("e2fsck"), .program("debugfs")))
struct Ext4AttributeTests {
    /// `cap_net_bind_service=ep` as `setcap` stores it (VFS_CAP_REVISION_2, permitted bit 10, effective).
    static let capability: [UInt8] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

    /// `u::rwx,u:1000:r-x,g::r-x,m::r-x,o::r--` in the VFS form (version 2, 8-byte entries).
    static let acl: [UInt8] = {
        var bytes: [UInt8] = [2, 0, 0, 0]
        for (tag, perm, id) in [
            (1, 7, 0xFFFF_FFFF), (2, 5, 1000), (4, 5, 0xFFFF_FFFF), (0x10, 5, 0xFFFF_FFFF), (0x20, 4, 0xFFFF_FFFF),
        ] {
            bytes += [UInt8(tag), 0, UInt8(perm), 0]
            bytes += withUnsafeBytes(of: UInt32(id).littleEndian) { Array($0) }
        }
        return bytes
    }()

    /// debugfs turns ext4's ACL back into the VFS form with 0, not ACL_UNDEFINED_ID, where no id is stored.
    static let aclAsDebugfsReadsIt: [UInt8] = {
        var bytes = acl
        for at in stride(from: 4, to: bytes.count, by: 8) where bytes[at] != 2 {
            bytes.replaceSubrange(at + 4..<at + 8, with: [0, 0, 0, 0])
        }
        return bytes
    }()

    static let big = [UInt8](repeating: 0x61, count: 700)

    @Test func attributesSurviveInTheInodeAndInABlock() async throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 32 << 20, options: Ext4Scratch.options())
        var ping = Ext4Bytes(Array("ELF".utf8))
        try writer.add(
            Ext4Entry(
                path: "usr/bin/ping", kind: .regularFile(size: 3), permissions: 0o755,
                extendedAttributes: [Ext4ExtendedAttribute(name: "security.capability", value: Self.capability)]),
            contents: &ping)
        try writer.add(
            Ext4Entry(
                path: "srv/shared", kind: .directory, permissions: 0o775,
                extendedAttributes: [
                    Ext4ExtendedAttribute(name: "system.posix_acl_access", value: Self.acl),
                    Ext4ExtendedAttribute(name: "system.posix_acl_default", value: Self.acl),
                    Ext4ExtendedAttribute(name: "user.comment", value: Array("hello".utf8)),
                ]))
        try writer.add(
            Ext4Entry(
                path: "srv/big", kind: .regularFile(size: 0), permissions: 0o644,
                extendedAttributes: [
                    Ext4ExtendedAttribute(name: "user.big", value: Self.big),
                    Ext4ExtendedAttribute(name: "user.small", value: [1, 2, 3]),
                    Ext4ExtendedAttribute(name: "trusted.overlay.opaque", value: Array("y".utf8)),
                ]))
        _ = try writer.finish()

        let (clean, report) = try await scratch.fsck()
        #expect(clean, "e2fsck: \(report)")
        #expect(try await attribute(scratch, "/usr/bin/ping", "security.capability") == Self.capability)
        #expect(try await attribute(scratch, "/srv/shared", "system.posix_acl_access") == Self.aclAsDebugfsReadsIt)
        #expect(try await attribute(scratch, "/srv/shared", "system.posix_acl_default") == Self.aclAsDebugfsReadsIt)
        #expect(try await attribute(scratch, "/srv/shared", "user.comment") == Array("hello".utf8))
        #expect(try await attribute(scratch, "/srv/big", "user.big") == Self.big)
        #expect(try await attribute(scratch, "/srv/big", "user.small") == [1, 2, 3])
        #expect(try await attribute(scratch, "/srv/big", "trusted.overlay.opaque") == Array("y".utf8))
        // On disk the ACL is ext4's own, byte for byte what debugfs's ea_set stores for the same ACL:
        // version 1, no ids for the owner, group, mask and other.
        let raw = try await attribute(scratch, "/srv/shared", "system.posix_acl_access", raw: true)
        #expect(raw == [1, 0, 0, 0, 1, 0, 7, 0, 2, 0, 5, 0, 0xE8, 3, 0, 0, 4, 0, 5, 0, 0x10, 0, 5, 0, 0x20, 0, 4, 0])
        // user.big cannot fit in the inode: it sits in a block of its own.
        let big = try await scratch.debugfs("stat /srv/big")
        #expect(!big.contains("File ACL: 0\n"))
        let list = try await scratch.debugfs("ea_list /srv/shared")
        #expect(list.contains("user.comment (5) = \"hello\""))
    }

    @Test func anUnknownPrefixOrABadACLIsRefused() throws {
        let scratch = try Ext4Scratch()
        defer { scratch.remove() }
        let writer = try Ext4Writer(path: scratch.image, size: 32 << 20, options: Ext4Scratch.options())
        let unknown = Ext4Entry(
            path: "a", kind: .directory, permissions: 0o755,
            extendedAttributes: [Ext4ExtendedAttribute(name: "bogus.name", value: [1])])
        #expect(throws: Ext4Error.self) { try writer.add(unknown) }
        let other = try Ext4Writer(path: scratch.image, size: 32 << 20, options: Ext4Scratch.options())
        let badACL = Ext4Entry(
            path: "b", kind: .directory, permissions: 0o755,
            extendedAttributes: [Ext4ExtendedAttribute(name: "system.posix_acl_access", value: [1, 0, 0, 0])])
        #expect(throws: Ext4Error.self) { try other.add(badACL) }
    }

    func attribute(_ scratch: Ext4Scratch, _ path: String, _ name: String, raw: Bool = false) async throws -> [UInt8] {
        let out = "\(scratch.folder)/ea-\(UUID().uuidString)"
        _ = try await scratch.debugfs("ea_get \(raw ? "-r " : "")-f \(out) \(path) \(name)")
        return Array((try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data())
    }
}
