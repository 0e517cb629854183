import Foundation
import KilnSupport
import KilnTestSupport
import Testing

@testable import BuildVM

extension BootTests {
    @Suite(
        "builder guest assembly", .requires(Fixtures.canBoot && Fixtures.tool("cpio"), "apt-get and GNU cpio"))
    struct BuilderGuestTests {
        @Test("assembly is cached by content, reproducible, and holds what /init needs")
        func assemblyIsCachedAndReproducible() async throws {
            let first = try await Fixtures.guest()
            let recipe = BuilderGuestRecipe(packages: try await Fixtures.packages())
            let cacheDirectory = URL(fileURLWithPath: first.kernel).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().path
            let again = try BuilderGuest.prepare(recipe, cacheDirectory: cacheDirectory)
            #expect(again.cached && again.key == first.key && again.initramfs == first.initramfs)

            // Another cache, same inputs: the same bytes.
            let other = try Fixtures.temporaryDirectory("cache2")
            defer { try? FileManager.default.removeItem(atPath: other) }
            let second = try BuilderGuest.prepare(recipe, cacheDirectory: other)
            #expect(!second.cached && second.key == first.key)
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: second.initramfs))
                    == Data(contentsOf: URL(fileURLWithPath: first.initramfs)))

            // A different epoch is a different guest.
            var later = recipe
            later.sourceDateEpoch = 1
            #expect(try BuilderGuest.cacheKey(later) != first.key)

            let (status, listing) = try await Subprocess.output([
                "sh", "-c", "cpio -it --quiet < \"$1\"", "sh", first.initramfs,
            ])
            #expect(status.succeeded)
            let names = Set(listing.split(separator: "\n").map(String.init))
            for needed in [
                "init", "bin/busybox", "bin/kiln-event", "dev/console", "etc/kiln/modules", "etc/mke2fs.conf",
                "kiln/bin/mke2fs", "kiln/bin/sfdisk", "kiln/bin/mkfs.vfat", "lib64/ld-linux-x86-64.so.2",
                "lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libext2fs.so.2",
            ] {
                #expect(names.contains(needed), "the initramfs lacks \(needed)")
            }
            #expect(!names.contains { $0.hasPrefix("usr/share/doc") })
        }
    }
}
