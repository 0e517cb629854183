/// Just enough of an ELF file (System V gABI, "ELF-64 Object File Format") to copy a program with
/// its libraries and a kernel module with its dependencies: `DT_NEEDED`, `PT_INTERP` and the
/// `.modinfo` section. Only ELFCLASS64 little-endian files (x86-64) are read; every multi-byte field
/// below is little-endian.
struct ELFFile {
    private let bytes: [UInt8]
    private let name: String

    /// Is this an ELF file at all? (Shell scripts and data files are not.)
    static func isELF(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7F && bytes[1] == 0x45 && bytes[2] == 0x4C && bytes[3] == 0x46
    }

    init(bytes: [UInt8], name: String) throws(BuildVMError) {
        guard Self.isELF(bytes), bytes.count >= 64 else { throw BuildVMError(.elf, "\(name): not an ELF file") }
        // e_ident[EI_CLASS] = 2 (ELFCLASS64), e_ident[EI_DATA] = 1 (ELFDATA2LSB).
        guard bytes[4] == 2, bytes[5] == 1 else {
            throw BuildVMError(.elf, "\(name): not a 64-bit little-endian ELF file")
        }
        self.bytes = bytes
        self.name = name
    }

    /// The libraries the dynamic section names (`DT_NEEDED`), in order.
    func neededLibraries() throws(BuildVMError) -> [String] {
        var result: [String] = []
        for section in try sections() where section.type == 6 {  // SHT_DYNAMIC
            let strings = try self.section(at: Int(section.link))
            var offset = section.offset
            while offset + 16 <= section.offset + section.size {
                let tag = try u64(offset)
                if tag == 0 { break }  // DT_NULL
                if tag == 1 {  // DT_NEEDED: d_val is an offset into the linked string table
                    result.append(try string(at: strings.offset + Int(try u64(offset + 8))))
                }
                offset += 16
            }
        }
        return result
    }

    /// The program interpreter (`PT_INTERP`), for dynamically linked executables.
    func interpreter() throws(BuildVMError) -> String? {
        let programHeaders = Int(try u64(0x20))  // e_phoff
        let entrySize = Int(try u16(0x36))  // e_phentsize
        let count = Int(try u16(0x38))  // e_phnum
        for index in 0..<count {
            let header = programHeaders + index * entrySize
            guard try u32(header) == 3 else { continue }  // PT_INTERP
            return try string(at: Int(try u64(header + 8)))  // p_offset
        }
        return nil
    }

    /// The `.modinfo` section's `key=value` strings of a kernel module ("depends=virtio,virtio_ring").
    func moduleInfo() throws(BuildVMError) -> [String: String] {
        let all = try sections()
        guard let names = all.indices.contains(stringTableIndex) ? all[stringTableIndex] : nil else {
            throw BuildVMError(.elf, "\(name): no section name table")
        }
        for section in all where try string(at: names.offset + Int(section.nameOffset)) == ".modinfo" {
            var info: [String: String] = [:]
            let end = section.offset + section.size
            guard end <= bytes.count else { throw truncated() }
            for item in bytes[section.offset..<end].split(separator: 0) {
                let text = String(decoding: item, as: UTF8.self)
                if let equals = text.firstIndex(of: "=") {
                    info[String(text[..<equals])] = String(text[text.index(after: equals)...])
                }
            }
            return info
        }
        throw BuildVMError(.elf, "\(name): no .modinfo section (not a kernel module?)")
    }

    private struct Section {
        var nameOffset: UInt32
        var type: UInt32
        var offset: Int
        var size: Int
        var link: UInt32
    }

    private var stringTableIndex: Int { Int((try? u16(0x3E)) ?? 0) }  // e_shstrndx

    private func sections() throws(BuildVMError) -> [Section] {
        let start = Int(try u64(0x28))  // e_shoff
        let entrySize = Int(try u16(0x3A))  // e_shentsize
        let count = Int(try u16(0x3C))  // e_shnum
        var result: [Section] = []
        for index in 0..<count {
            let header = start + index * entrySize
            result.append(
                Section(
                    nameOffset: try u32(header),  // sh_name
                    type: try u32(header + 4),  // sh_type
                    offset: Int(try u64(header + 24)),  // sh_offset
                    size: Int(try u64(header + 32)),  // sh_size
                    link: try u32(header + 40)))  // sh_link
        }
        return result
    }

    private func section(at index: Int) throws(BuildVMError) -> Section {
        let all = try sections()
        guard all.indices.contains(index) else { throw BuildVMError(.elf, "\(name): no section \(index)") }
        return all[index]
    }

    private func string(at offset: Int) throws(BuildVMError) -> String {
        guard offset >= 0, offset < bytes.count else { throw truncated() }
        guard let end = bytes[offset...].firstIndex(of: 0) else { throw truncated() }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    private func u16(_ offset: Int) throws(BuildVMError) -> UInt16 { UInt16(try little(offset, 2)) }
    private func u32(_ offset: Int) throws(BuildVMError) -> UInt32 { UInt32(try little(offset, 4)) }
    private func u64(_ offset: Int) throws(BuildVMError) -> UInt64 { try little(offset, 8) }

    /// A little-endian unsigned integer of `width` bytes at `offset`.
    private func little(_ offset: Int, _ width: Int) throws(BuildVMError) -> UInt64 {
        guard offset >= 0, offset + width <= bytes.count else { throw truncated() }
        var value: UInt64 = 0
        for index in (0..<width).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    private func truncated() -> BuildVMError { BuildVMError(.elf, "\(name): truncated or malformed ELF file") }
}
