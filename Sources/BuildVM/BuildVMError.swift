/// Everything that can go wrong in the builder guest's module: reading packages, assembling the
/// guest, running QEMU, and what the guest reports.
package struct BuildVMError: Error, CustomStringConvertible, Sendable {
    package enum Code: String, Sendable {
        /// libarchive could not read or write an archive.
        case archive
        /// A `.deb` lacks a member or a file it must hold.
        case package
        /// An ELF file is malformed or a library it needs is missing.
        case elf
        /// The builder guest could not be assembled or cached.
        case assembly
        /// QEMU could not start, or ended without a result.
        case qemu
        /// KVM was asked for and does not work.
        case kvm
        /// The guest printed nothing for too long, or ran past its deadline.
        case timeout
        /// The guest reported a failure.
        case guest
        /// The run was cancelled.
        case interrupted
        /// An input or output file could not be read or written.
        case io
    }

    package var code: Code
    /// Lowercase, no trailing period, naming the path or value concerned.
    package var message: String
    /// The last lines the guest printed, when the error comes from a run.
    package var consoleTail: [String]
    package var cause: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, consoleTail: [String] = [], cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.consoleTail = consoleTail
        self.cause = cause
    }

    package var description: String {
        var text = message
        if let cause { text += ": \(cause)" }
        return text
    }
}
