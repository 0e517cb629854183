import Foundation
import KilnSupport
import Testing

@testable import DiskImage

/// Headers against bytes written out by hand from each specification's field table.
@Suite struct HeaderTests {
    private func hex(_ text: String) -> [UInt8] {
        let digits = text.filter { $0.isHexDigit }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            bytes.append(UInt8(digits[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    @Test func qcow2HeaderIsBigEndian() throws {
        let header = Qcow2Header(
            size: 0x1_0000_0600, l1Size: 9, l1TableOffset: 0x30000, refcountTableOffset: 0x40000,
            refcountTableClusters: 1)
        let expected = hex(
            """
            514649fb 00000003 0000000000000000 00000000 00000010 0000000100000600 00000000 00000009
            0000000000030000 0000000000040000 00000001 00000000 0000000000000000
            0000000000000000 0000000000000000 0000000000000000 00000004 00000068
            00000000 00000000
            """)
        #expect(header.encoded().storage == expected)
        #expect(try Qcow2Header.decode(header.encoded(), path: "x") == header)
    }

    @Test func vmdkSparseHeaderIsLittleEndian() {
        let header = VMDKHeader(
            version: 3, flags: 0x30001, capacity: 0x21800, descriptorOffset: 1, descriptorSize: 20, rgdOffset: 0,
            gdOffset: VMDKHeader.gdAtEnd, overHead: 128, compressAlgorithm: 1)
        let bytes = header.encoded().storage
        #expect(bytes.count == 512)
        let expected = hex(
            """
            4b444d56 03000000 01000300 0018020000000000 8000000000000000 0100000000000000 1400000000000000
            00020000 0000000000000000 ffffffffffffffff 8000000000000000 00 0a200d0a 0100
            """)
        #expect(Array(bytes[0..<79]) == expected)
        #expect(bytes[79...].allSatisfy { $0 == 0 })
    }

    @Test func vhdFooterFieldsAndChecksum() throws {
        var footer = VHDFooter.make(
            size: 64 << 20, type: VHDFooter.fixedType, dataOffset: UInt64.max, timestamp: 946_684_800 + 0x2F00_0000)
        #expect(footer.timestamp == 0x2F00_0000)
        footer.uniqueID = [UInt8](repeating: 0xAB, count: 16)
        let bytes = footer.encoded().storage
        #expect(Array(bytes[0..<16]) == hex("636f6e6563746978 00000002 00010000"))
        #expect(Array(bytes[16..<28]) == hex("ffffffffffffffff 2f000000"))
        #expect(Array(bytes[40..<64]) == hex("0000000004000000 0000000004000000 03c3 08 11 00000002"))
        // The checksum is the one's complement of the sum of every other byte.
        var sum: UInt32 = 0
        for (i, b) in bytes.enumerated() where !(64..<68).contains(i) { sum &+= UInt32(b) }
        #expect(Array(bytes[64..<68]) == withUnsafeBytes(of: (~sum).bigEndian, Array.init))
        #expect(try VHDFooter.decode(footer.encoded(), path: "x") == footer)
    }

    @Test func vhdGeometryFollowsTheSpecAppendix() {
        // 64 MiB = 131072 sectors: 17 sectors per track, 7710 cylinder-heads, 8 heads, 963 cylinders.
        #expect(VHDFooter.geometry(for: 64 << 20) == (963, 8, 17))
        // Past 65535 x 16 x 63 sectors, the geometry saturates at 255 sectors per track.
        #expect(VHDFooter.geometry(for: 127 << 30).2 == 255)
    }

    @Test func crc32cMatchesTheCheckValue() {
        // The standard check value of CRC-32C over "123456789".
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func vhdxHeaderCarriesItsChecksum() {
        let guid = GUID("01020304-0506-0708-090A-0B0C0D0E0F10")
        #expect(guid.bytes == hex("04030201 0605 0807 090a0b0c0d0e0f10"))
        var header = VHDX.header(sequence: 7, fileWrite: guid, dataWrite: guid)
        #expect(header.slice(0, 4) == Array("head".utf8))
        #expect(header.getLE(UInt64.self, at: 8) == 7)
        #expect(Array(header.storage[64..<80]) == hex("0000 0100 00001000 0000100000000000"))
        let stored = header.getLE(UInt32.self, at: 4)
        header.putLE(UInt32(0), at: 4)
        #expect(CRC32C.checksum(header.storage) == stored)
    }

    @Test func vdiHeaderFields() {
        let create = GUID("01020304-0506-0708-090A-0B0C0D0E0F10")
        let modify = GUID("11121314-1516-1718-191A-1B1C1D1E1F20")
        let header = VDI.header(
            diskSize: 0x4300600, blocks: 68, allocated: 5, offsetBlocks: 512, offsetData: 1 << 20, uuidCreate: create,
            uuidModify: modify)
        // VDI stores UUIDs in text order (RTUUID as bytes), not GUID mixed-endian.
        #expect(
            Array(header.storage[0x188..<0x1A8])
                == hex("0102030405060708090a0b0c0d0e0f10 1112131415161718191a1b1c1d1e1f20"))
        #expect(Array(header.storage[0x40..<0x50]) == hex("7f10dabe 01000100 80010000 01000000"))
        #expect(Array(header.storage[0x154..<0x15C]) == hex("00020000 00001000"))
        #expect(
            Array(header.storage[0x168..<0x188])
                == hex("00020000 00000000 0006300400000000 00001000 00000000 44000000 05000000"))
    }
}
