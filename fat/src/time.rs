//! FAT and exFAT share one packed date/time layout (date in the high half, time in the
//! low half), so one decoder serves both.

/// A point in time as seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

// Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar and
// free of tables, so a corrupt day-of-month cannot index out of anything.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Decodes a FAT date (+ optional time and 10 ms units). Returns `None` for the
/// all-zero "not set" value and for fields out of range, rather than inventing a time.
pub(crate) fn decode(date: u16, time: u16, ten_ms: u8) -> Option<Timestamp> {
    if date == 0 {
        return None;
    }
    let day = i64::from(date & 0x1f);
    let month = i64::from((date >> 5) & 0x0f);
    let year = 1980 + i64::from(date >> 9);
    let secs2 = i64::from(time & 0x1f);
    let min = i64::from((time >> 5) & 0x3f);
    let hour = i64::from(time >> 11);
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) || hour > 23 || min > 59 || secs2 > 29
    {
        return None;
    }
    let extra = if ten_ms < 200 { u32::from(ten_ms) } else { 0 };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + secs2 * 2 + i64::from(extra / 100);
    Some(Timestamp {
        secs,
        nanos: (extra % 100) * 10_000_000,
    })
}

/// exFAT UTC offset byte: bit 7 says the offset is valid, bits 0–6 are a signed count
/// of 15-minute steps from UTC. Stored times are local, so UTC = local − offset.
pub(crate) fn apply_utc_offset(ts: Timestamp, offset: u8) -> Timestamp {
    if offset & 0x80 == 0 {
        return ts;
    }
    let steps = i64::from(((offset << 1) as i8) >> 1);
    Timestamp {
        secs: ts.secs - steps * 15 * 60,
        nanos: ts.nanos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 1980-01-01 00:00:00
        assert_eq!(decode(0x21, 0, 0).unwrap().secs, 315_532_800);
        // 2024-02-29 13:45:58.37 local
        let date = ((2024 - 1980) << 9) | (2 << 5) | 29;
        let time = (13 << 11) | (45 << 5) | 29;
        let t = decode(date, time, 37).unwrap();
        assert_eq!(t.secs, 1_709_214_358);
        assert_eq!(t.nanos, 370_000_000);
        assert_eq!(decode(0, 0, 0), None);
        assert_eq!(decode(0x21, 24 << 11, 0), None);
    }

    #[test]
    fn utc_offsets() {
        let t = Timestamp {
            secs: 10_000,
            nanos: 0,
        };
        // +02:00 = 8 steps
        assert_eq!(apply_utc_offset(t, 0x80 | 8).secs, 10_000 - 7200);
        // -05:00 = -20 steps = 0x6C in 7-bit two's complement
        assert_eq!(apply_utc_offset(t, 0x80 | 0x6C).secs, 10_000 + 18_000);
        assert_eq!(apply_utc_offset(t, 8).secs, 10_000);
    }
}
