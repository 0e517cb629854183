import Crypto

/// Where the identifiers that formats store come from (the VHD unique ID, VHDX file/data/disk GUIDs,
/// VDI creation and modification UUIDs, the VMDK content ID): derived from a seed, never random, so
/// that the same input converted twice gives the same bytes.
///
/// The seed is the caller's text when given, otherwise a digest of the guest bytes and the virtual
/// size: two different images get different identifiers (VirtualBox refuses to register a second
/// disk with a UUID it already knows), the same image always the same ones.
package struct ImageIdentity: Sendable, Equatable {
    /// 32 bytes that every identifier is derived from.
    let seed: [UInt8]

    /// An identity from caller-given text (`kiln convert --seed`).
    package init(seed text: String) {
        seed = Array(SHA256.hash(data: Array("kiln image identity\u{0}seed\u{0}\(text)".utf8)))
    }

    /// An identity from the digest of the content written and the virtual size.
    init(content: ContentDigest, virtualSize: UInt64) {
        var hasher = SHA256()
        hasher.update(data: Array("kiln image identity\u{0}content\u{0}".utf8))
        var size = virtualSize.bigEndian
        withUnsafeBytes(of: &size) { hasher.update(bufferPointer: $0) }
        hasher.update(data: content.bytes)
        seed = Array(hasher.finalize())
    }

    private func derive(_ purpose: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: seed)
        hasher.update(data: Array(purpose.utf8))
        return Array(hasher.finalize())
    }

    /// A UUID for `purpose` (each identifier in a file gets its own), marked as RFC 9562 version 8
    /// (vendor-defined) with the RFC variant, since it is neither random nor a name-based v5.
    func guid(_ purpose: String) -> GUID {
        var plain = Array(derive(purpose)[0..<16])
        plain[6] = (plain[6] & 0x0F) | 0x80
        plain[8] = (plain[8] & 0x3F) | 0x80
        return GUID(
            mixedEndian: [plain[3], plain[2], plain[1], plain[0], plain[5], plain[4], plain[7], plain[6]]
                + plain[8..<16])
    }

    /// A non-zero 32-bit number for `purpose` (the VMDK content ID).
    func uint32(_ purpose: String) -> UInt32 {
        let d = derive(purpose)
        let value = UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
        // 0xFFFFFFFF means "no parent" in a VMDK's parentCID; keep clear of it and of zero.
        return value == 0 || value == UInt32.max ? 1 : value
    }
}

/// A fast digest of the blocks a conversion writes, with their positions. Not cryptographic: it only
/// has to tell different images apart, at a small fraction of the cost of copying the data.
struct ContentDigest {
    private var state: (UInt64, UInt64, UInt64, UInt64) = (
        0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89
    )
    private static let prime1: UInt64 = 0x9E37_79B9_7F4A_7C15
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F

    @inline(__always)
    private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let x = (lane ^ word) &* prime1
        return (x << 31 | x >> 33) &* prime2
    }

    /// Adds the block at `index`; four independent lanes over 32-byte strides keep the CPU busy
    /// without waiting on one multiply chain.
    mutating func add(block index: UInt64, _ data: UnsafeRawBufferPointer) {
        var (a, b, c, d) = state
        a = ContentDigest.mix(a, index)
        b = ContentDigest.mix(b, UInt64(data.count))
        var offset = 0
        let whole = data.count - data.count % 32
        while offset < whole {
            a = ContentDigest.mix(a, data.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            b = ContentDigest.mix(b, data.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            c = ContentDigest.mix(c, data.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            d = ContentDigest.mix(d, data.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            offset += 32
        }
        while offset < data.count {
            d = ContentDigest.mix(d, UInt64(data[offset]))
            offset += 1
        }
        // Rotate the lanes so that the same bytes in a different block order give another digest.
        state = (b, c, d, a)
    }

    /// The 32 bytes of the four lanes, little-endian.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for lane in [state.0, state.1, state.2, state.3] {
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: lane >> UInt64(shift))) }
        }
        return out
    }
}
