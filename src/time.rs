//! UTC calendar dates for status.json, snapshot names and the snapshot journal, without a
//! date crate: all we ever print is "now" or a freeze time, in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// Times before 1970 (a clock set wrong) are shown as the epoch.
    pub fn from_system(t: SystemTime) -> Utc {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days: exact for the proleptic Gregorian calendar.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    pub fn now() -> Utc {
        Utc::from_system(SystemTime::now())
    }

    /// RFC 3339 / ISO 8601: `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn iso8601(&self) -> String {
        self.format("-", ":")
    }

    /// `YYYYMMDDTHHMMSSZ`: sorts like the time and is safe in any name.
    pub fn compact(&self) -> String {
        self.format("", "")
    }

    fn format(&self, date_sep: &str, time_sep: &str) -> String {
        format!(
            "{:04}{date_sep}{:02}{date_sep}{:02}T{:02}{time_sep}{:02}{time_sep}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

pub fn iso8601(t: SystemTime) -> String {
    Utc::from_system(t).iso8601()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = Utc::from_system(UNIX_EPOCH + Duration::from_secs(1_709_210_096));
        assert_eq!(leap.iso8601(), "2024-02-29T12:34:56Z");
        assert_eq!(leap.compact(), "20240229T123456Z");
        // 2100 is not a leap year; 2000 was.
        let t = Utc::from_system(UNIX_EPOCH + Duration::from_secs(4_107_542_400));
        assert_eq!(t.iso8601(), "2100-03-01T00:00:00Z");
        let t = Utc::from_system(UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(t.iso8601(), "2000-02-29T00:00:00Z");
        assert_eq!(
            iso8601(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}
