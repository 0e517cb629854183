#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// FAT's directory-entry times (Microsoft's "FAT: General Overview of On-Disk Format", "Date and Time
/// Formats"), in UTC as kiln's guests run.
package enum FATTime {
    /// time = hour << 11 | minute << 5 | second / 2, date = (year - 1980) << 9 | month << 5 | day, for
    /// `epoch` seconds since 1970 clamped to what FAT can say (1980 to 2107).
    package static func encode(_ epoch: Int64) -> (time: UInt16, date: UInt16) {
        var seconds = time_t(min(max(epoch, 315_532_800), 4_354_819_198))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let time = UInt16(parts.tm_hour) << 11 | UInt16(parts.tm_min) << 5 | UInt16(parts.tm_sec / 2)
        let date = UInt16(parts.tm_year + 1900 - 1980) << 9 | UInt16(parts.tm_mon + 1) << 5 | UInt16(parts.tm_mday)
        return (time, date)
    }
}
