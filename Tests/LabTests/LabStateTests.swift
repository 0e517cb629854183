import Foundation
import KilnTestSupport
import NetBoot
import Testing

@testable import Lab

@Suite("The lab's installed-hosts record")
struct LabStateTests {
    private let first = MACAddress([0x52, 0x54, 0, 0, 0, 2])
    private let second = MACAddress([0x52, 0x54, 0, 0, 0, 3])

    /// kill -9 in the middle of a save leaves the temporary file, half written, and no rename: a
    /// restart reads the record as it was, and the next save removes the dead writer's file (as
    /// `DHCPLeasesTests` checks for the lease file, which is written the same way).
    @Test func aKilledSaveLeavesTheRecordAsItWas() throws {
        let folder = try TemporaryFolder()
        let dead = try ProcessTable.endedPID()
        let state = try LabState(directory: folder.path + "/state")
        try state.markInstalled(first, name: "lab-07")
        let record = state.file
        let name = URL(fileURLWithPath: record).lastPathComponent
        let partialRecord = folder.path + "/state/.\(name).kiln-\(dead)-43"
        try Data("52:54:00:00:00:03 lab".utf8).write(to: URL(fileURLWithPath: partialRecord))
        let reread = try LabState(directory: folder.path + "/state")
        #expect(reread.isInstalled(first) && !reread.isInstalled(second))
        try reread.markInstalled(second, name: "lab-08")
        #expect(!FileManager.default.fileExists(atPath: partialRecord))
        #expect(try LabState(directory: folder.path + "/state").isInstalled(second))
    }
}
