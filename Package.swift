// swift-tools-version: 6.0
import Foundation
import PackageDescription

let package = Package(
    name: "kiln",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kiln", targets: ["kiln"])
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(
            name: "CKilnArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .systemLibrary(
            name: "CKilnZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CKilnYaml",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .systemLibrary(
            name: "CKilnCrypt",
            pkgConfig: "libcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),

        // Libraries, leaves first.
        .target(name: "KilnSupport", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),
        .target(
            name: "KilnArchive",
            dependencies: ["CKilnArchive", .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "Ext4", dependencies: ["KilnSupport", .product(name: "SystemPackage", package: "swift-system")]),
        // The ext4 writer fed from a tar or cpio stream (libarchive): the build pipeline's and the
        // benchmark's way in, and a fuzz target's.
        .target(name: "Ext4Archive", dependencies: ["Ext4", "KilnArchive"]),
        .target(
            name: "Appliance",
            dependencies: [
                "KilnSupport",
                "CKilnCrypt",
                "CKilnYaml",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "Autoinstall", dependencies: ["Appliance", "KilnSupport", "Packages"]),
        .target(
            name: "Packages",
            dependencies: [
                "KilnSupport",
                "KilnArchive",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "DiskImage",
            dependencies: [
                "KilnSupport",
                "CKilnZlib",
                "KilnArchive",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "BuildVM",
            dependencies: [
                "KilnSupport",
                "KilnArchive",
                "DiskImage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The protocol servers (TFTP, DHCP, HTTP): they serve what a BootFileProvider hands them and know
        // nothing of labs, appliances or packages.
        .target(
            name: "NetBoot",
            dependencies: [
                "KilnSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The lab: its file, per-host boot menus and answers, deploys, the package mirror and the boot
        // files taken from Debian, served through NetBoot.
        .target(
            name: "Lab",
            dependencies: [
                "NetBoot",
                "KilnSupport",
                "KilnArchive",
                "DiskImage",
                "Appliance",
                "Autoinstall",
                "Packages",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "Builder",
            dependencies: [
                "KilnSupport", "KilnArchive", "Appliance", "Autoinstall", "Packages", "DiskImage", "BuildVM", "Ext4",
                "Ext4Archive", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            // The builder guest's install script, a shell file of its own (shellcheck reads it as one).
            resources: [.embedInCode("Resources/install.sh")]
        ),
        .target(
            name: "KilnCommands",
            dependencies: [
                "KilnSupport", "KilnArchive", "Appliance", "Autoinstall", "Packages", "DiskImage", "BuildVM", "NetBoot",
                "Lab", "Builder",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(name: "kiln", dependencies: ["KilnCommands"]),
        // libFuzzer targets for the disk-image readers and the TFTP and DHCP codecs (`make fuzz`); built
        // plainly, a replayer of corpus files through the same code.
        .executableTarget(
            name: "kiln-fuzz",
            dependencies: [
                "DiskImage", "NetBoot", "Lab", "Appliance", "Autoinstall", "Packages", "KilnArchive", "Ext4",
                "Ext4Archive",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/KilnFuzz"),
        // The ext4 writer from a folder or a tar, timed against mke2fs -d by Benchmarks/ext4.sh.
        .executableTarget(
            name: "kiln-ext4-bench", dependencies: ["Ext4", "Ext4Archive", "KilnArchive"], path: "Sources/KilnExt4Bench"
        ),

        // Tests: one target per library, and what several of them share.
        .target(name: "KilnTestSupport", dependencies: ["KilnSupport"], path: "Tests/KilnTestSupport"),
        .testTarget(name: "KilnSupportTests", dependencies: ["KilnSupport", "KilnTestSupport"]),
        .testTarget(name: "KilnArchiveTests", dependencies: ["KilnArchive", "KilnTestSupport"]),
        .testTarget(name: "Ext4Tests", dependencies: ["Ext4", "KilnSupport", "KilnTestSupport"]),
        .testTarget(
            name: "ApplianceTests", dependencies: ["Appliance", "KilnTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AutoinstallTests", dependencies: ["Autoinstall", "Appliance", "Packages", "KilnTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "PackagesTests", dependencies: ["Packages", "KilnTestSupport"]),
        .testTarget(name: "DiskImageTests", dependencies: ["DiskImage", "KilnSupport", "KilnTestSupport"]),
        .testTarget(name: "BuildVMTests", dependencies: ["BuildVM", "KilnArchive", "KilnTestSupport"]),
        .testTarget(name: "NetBootTests", dependencies: ["NetBoot", "KilnTestSupport"]),
        .testTarget(name: "LabTests", dependencies: ["Lab", "NetBoot", "Packages", "KilnTestSupport"]),
        .testTarget(
            name: "BuilderTests",
            dependencies: [
                "Builder", "KilnArchive", "KilnSupport", "KilnTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(name: "KilnCommandsTests", dependencies: ["KilnCommands", "KilnTestSupport"]),
    ]
)

// CI (.ci/run sets KILN_STRICT=1): a compiler warning in kiln's own code is an error. Dependencies
// keep their warnings, which SwiftPM silences anyway.
if ProcessInfo.processInfo.environment["KILN_STRICT"] == "1" {
    for target in package.targets where target.type != .system {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-warnings-as-errors"])]
    }
}
