import Synchronization

/// Every QEMU process this program has started and not yet seen end, so that a signal handler
/// can stop them all before kiln exits (`Interruption.onInterrupt { RunningQEMU.killAll() }`).
package enum RunningQEMU {
    private static let machines = Mutex<[ObjectIdentifier: ConsoleMachine]>([:])

    static func add(_ machine: ConsoleMachine) {
        machines.withLock { $0[ObjectIdentifier(machine)] = machine }
    }

    static func remove(_ machine: ConsoleMachine) {
        _ = machines.withLock { $0.removeValue(forKey: ObjectIdentifier(machine)) }
    }

    /// Sends SIGKILL to every running QEMU's process group. Safe from any thread.
    package static func killAll() {
        for machine in machines.withLock({ Array($0.values) }) { machine.killNow() }
    }

    /// Their process ids (tests use them to prove nothing is left behind).
    package static var processIDs: [Int32] { machines.withLock { $0.values.map { $0.process.processID } } }

    /// How many are running (tests use it to prove nothing is left behind).
    package static var count: Int { machines.withLock { $0.count } }
}
