import Foundation
import KilnSupport
import Testing

@testable import BuildVM

#if canImport(Glibc)
    import Glibc
#endif

/// Every test that boots QEMU or assembles the guest, one at a time: the machine has two cores
/// shared with other work, and parallel guests only make each one miss its deadlines.
@Suite(.serialized) struct BootTests {}

/// Shared test inputs: the builder guest's packages fetched with `apt-get download` (the host's
/// own apt sources) and the guest assembled once per test process.
enum Fixtures {
    static func tool(_ name: String) -> Bool {
        let path = Subprocess.minimalEnvironment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(name)", X_OK) == 0 }
    }

    static var canBoot: Bool { tool("qemu-system-x86_64") && tool("apt-get") }

    /// One directory per test process, removed when the process exits.
    static let processRoot: String = {
        let path = NSTemporaryDirectory() + "kiln-buildvm-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit {
            try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "kiln-buildvm-tests-\(getpid())")
        }
        return path
    }()

    /// A fresh directory inside `processRoot`.
    static func temporaryDirectory(_ label: String) throws -> String {
        let path = "\(processRoot)/\(label)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static let shared = SharedGuest()

    /// The `.deb` files of `BuilderGuestRecipe.debianPackages`, downloaded once per process.
    static func packages() async throws -> [String] { try await shared.packages() }

    /// The builder guest for those packages, assembled once per process into a private cache.
    static func guest() async throws -> BuilderGuest { try await shared.guest() }

    actor SharedGuest {
        private var debs: [String]?
        private var assembled: BuilderGuest?

        func packages() async throws -> [String] {
            if let debs { return debs }
            let dir = try Fixtures.temporaryDirectory("debs")
            var names = BuilderGuestRecipe.debianPackages
            // The kernel metapackage holds no kernel: follow it to the versioned image package.
            let (_, depends) = try await Subprocess.output(["apt-cache", "depends", "linux-image-cloud-amd64"])
            guard
                let image = depends.split(separator: "\n").compactMap({ line -> String? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "Depends" else {
                        return nil
                    }
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }).first
            else { throw BuildVMError(.package, "apt-cache names no kernel for linux-image-cloud-amd64") }
            names = names.map { $0 == "linux-image-cloud-amd64" ? image : $0 }
            let download = Subprocess(
                ["sh", "-c", "cd \"$1\" && shift && exec apt-get download -q \"$@\"", "sh", dir] + names)
            try await download.run()
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".deb") }
                .sorted()
            let paths = files.map { "\(dir)/\($0)" }
            debs = paths
            return paths
        }

        func guest() async throws -> BuilderGuest {
            if let assembled { return assembled }
            let cache = try Fixtures.temporaryDirectory("cache")
            let recipe = BuilderGuestRecipe(packages: try await packages())
            let start = ContinuousClock.now
            let guest = try BuilderGuest.prepare(recipe, cacheDirectory: cache)
            print("builder guest assembled in \(ContinuousClock.now - start)")
            assembled = guest
            return guest
        }
    }
}
