import Foundation
import KilnTestSupport
import Testing

@testable import DiskImage

/// Raw inputs whose size is not a multiple of 512 bytes: QEMU counts a disk in 512-byte sectors, so
/// every output must be rounded up to a whole sector, as `qemu-img convert` rounds, or the tail is lost.
@Suite(.requires(Fixture.hasQemuImg, "qemu-img (Debian package qemu-utils) as the judge"))
struct OddSizeTests {
    static let sizes: [UInt64] = [1, 511, 513, 65_537, 1_000_001]

    @Test(arguments: Target.all)
    func oddSizedRawConvertsWithoutLosingItsTail(_ target: Target) async throws {
        let dir = try Fixture.directory()
        defer { Fixture.cleanup(dir) }
        for size in Self.sizes {
            let source = "\(dir)/odd-\(size).raw"
            var generator = SplitMix(seed: size)
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next() | 1) }
            try Data(bytes).write(to: URL(fileURLWithPath: source))
            let output = "\(dir)/odd-\(size).\(target.options.format.rawValue)"
            try ImageConverter.convert(from: source, to: output, options: target.options)

            let info = try await Fixture.info(output, format: target.qemuFormat)
            let virtualSize = (info["virtual-size"] as? NSNumber)?.uint64Value
            // A raw output keeps the exact bytes, which QEMU reads padded to a whole sector.
            #expect(virtualSize == size.roundedUp(to: target.sizeAlignment), "\(target) of \(size) bytes")
            let (code, text) = try await Fixture.qemuImg(
                ["compare", "-f", "raw", "-F", target.qemuFormat, source, output])
            #expect(code == 0, "\(target) of \(size) bytes: qemu-img compare: \(text)")
            if target.checkable {
                let (code, text) = try await Fixture.qemuImg(["check", "-f", target.qemuFormat, output])
                #expect(code == 0, "\(target) of \(size) bytes: qemu-img check: \(text)")
            }
            // What qemu-img itself writes for the same input has the same virtual size.
            if target.options.format != .vhd {
                let theirs = "\(dir)/theirs-\(size).\(target.qemuFormat)"
                let (made, madeText) = try await Fixture.qemuImg(
                    ["convert", "-f", "raw", "-O", target.qemuFormat, source, theirs])
                #expect(made == 0, "qemu-img convert: \(madeText)")
                let theirInfo = try await Fixture.info(theirs, format: target.qemuFormat)
                #expect(
                    (theirInfo["virtual-size"] as? NSNumber)?.uint64Value == virtualSize,
                    "\(target) of \(size) bytes: qemu-img rounds otherwise")
            }
        }
    }
}
