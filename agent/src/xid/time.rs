//! Kernel timestamps → wall-clock time: the clock pair, the conversion, RFC 3339 formatting and
//! parsing of the ISO timestamps `dmesg --time-format iso` and `journalctl -o short-iso` write.
//!
//! Kernel records carry microseconds since boot (the monotonic clock); wall time is
//! `realtime_now − (monotonic_now − ts)`. Both clocks are read once per analysis into a [`Clock`],
//! so every conversion is a pure function of it.

/// The two clocks read at the same moment: the basis of every since-boot → wall-clock conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_REALTIME`, microseconds since the Unix epoch.
    pub realtime_unix_micros: i64,
    /// `CLOCK_MONOTONIC`, microseconds since boot (what kernel log timestamps count).
    pub monotonic_micros: u64,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Clock {
        Clock {
            realtime_unix_micros: read_clock(libc::CLOCK_REALTIME),
            monotonic_micros: u64::try_from(read_clock(libc::CLOCK_MONOTONIC)).unwrap_or(0),
        }
    }

    /// A clock whose boot happened `uptime_seconds` before the current wall-clock time (the mock's
    /// simulated uptime).
    pub fn with_uptime(uptime_seconds: f64) -> Clock {
        Clock {
            realtime_unix_micros: read_clock(libc::CLOCK_REALTIME),
            monotonic_micros: seconds_to_micros(uptime_seconds),
        }
    }

    /// Wall-clock time (µs since the epoch) of a record stamped `since_boot_micros` after boot.
    pub fn wall_micros(&self, since_boot_micros: u64) -> i64 {
        let age = i128::from(self.monotonic_micros) - i128::from(since_boot_micros);
        let wall = i128::from(self.realtime_unix_micros) - age;
        i64::try_from(wall).unwrap_or(if wall < 0 { i64::MIN } else { i64::MAX })
    }

    /// The inverse of [`Clock::wall_micros`]: microseconds since boot at a wall-clock time (negative
    /// before boot).
    pub fn since_boot_micros(&self, wall_micros: i64) -> i128 {
        i128::from(self.monotonic_micros)
            - (i128::from(self.realtime_unix_micros) - i128::from(wall_micros))
    }
}

fn read_clock(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000
}

/// Whole microseconds in `seconds` (negative and non-finite inputs become 0).
pub fn seconds_to_micros(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e6).round() as u64
    } else {
        0
    }
}

/// Seconds as a float, for report fields named `*_seconds`.
pub fn micros_to_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-27T10:00:00.123456Z`.
pub fn format_rfc3339(unix_micros: i64) -> String {
    let seconds = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// A short human duration ("45 s", "12.5 minutes", "3.2 hours", "4.1 days").
pub fn human_duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.1} minutes", seconds / 60.0)
    } else if seconds < 2.0 * 86_400.0 {
        format!("{:.1} hours", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// Parses a leading ISO 8601 timestamp with a zone (`2026-11-27T10:00:00,123456+00:00`,
/// `…T10:00:00.5Z`, `…T10:00:00+0100`) and returns (µs since the epoch, bytes consumed).
pub fn parse_iso_prefix(input: &[u8]) -> Option<(i64, usize)> {
    let year = digits(input, 0, 4)?;
    let month = digits(input, 5, 2)?;
    let day = digits(input, 8, 2)?;
    let hour = digits(input, 11, 2)?;
    let minute = digits(input, 14, 2)?;
    let second = digits(input, 17, 2)?;
    if input[4] != b'-' || input[7] != b'-' || !matches!(input[10], b'T' | b' ') {
        return None;
    }
    if input[13] != b':' || input[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut micros: i64 = 0;
    if matches!(input.get(pos), Some(b'.' | b',')) {
        pos += 1;
        let start = pos;
        let mut scale = 100_000;
        while let Some(d) = input.get(pos).filter(|b| b.is_ascii_digit()) {
            micros += i64::from(d - b'0') * scale;
            scale /= 10;
            pos += 1;
        }
        if pos == start {
            return None;
        }
    }
    let offset_seconds: i64 = match input.get(pos) {
        Some(b'Z') => {
            pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            let hours = digits(input, pos + 1, 2)?;
            let (minutes, used) = if input.get(pos + 3) == Some(&b':') {
                (digits(input, pos + 4, 2)?, 6)
            } else {
                (digits(input, pos + 3, 2)?, 5)
            };
            pos += used;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(((local - offset_seconds) * 1_000_000 + micros, pos))
}

fn digits(input: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = input.get(start..start + len)?;
    slice.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        // 2026-11-27T10:00:00Z
        realtime_unix_micros: 1_795_773_600_000_000,
        monotonic_micros: 7_200_000_000, // booted two hours earlier
    };

    #[test]
    fn since_boot_converts_to_wall_clock() {
        assert_eq!(
            format_rfc3339(CLOCK.wall_micros(7_200_000_000)),
            "2026-11-27T10:00:00.000000Z"
        );
        assert_eq!(
            format_rfc3339(CLOCK.wall_micros(0)),
            "2026-11-27T08:00:00.000000Z"
        );
        assert_eq!(
            format_rfc3339(CLOCK.wall_micros(3_600_123_456)),
            "2026-11-27T09:00:00.123456Z"
        );
        assert_eq!(CLOCK.since_boot_micros(CLOCK.wall_micros(42)), 42);
    }

    #[test]
    fn timestamps_after_now_land_in_the_future_instead_of_wrapping() {
        assert_eq!(
            format_rfc3339(CLOCK.wall_micros(7_260_000_000)),
            "2026-11-27T10:01:00.000000Z"
        );
    }

    #[test]
    fn rfc3339_formats_dates_across_eras() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            format_rfc3339(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            format_rfc3339(4_107_542_400_000_000),
            "2100-03-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn iso_prefixes_of_dmesg_and_journalctl_parse() {
        let cases: &[(&str, &str, usize)] = &[
            (
                "2026-11-27T10:00:00,123456+00:00 NVRM",
                "2026-11-27T10:00:00.123456Z",
                32,
            ),
            (
                "2026-11-27T11:00:00,000001+01:00 x",
                "2026-11-27T10:00:00.000001Z",
                32,
            ),
            (
                "2026-11-27T10:00:00+0000 host kernel:",
                "2026-11-27T10:00:00.000000Z",
                24,
            ),
            (
                "2026-11-27T05:00:00.5-05:00",
                "2026-11-27T10:00:00.500000Z",
                27,
            ),
            ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00.000000Z", 20),
        ];
        for (input, expected, consumed) in cases {
            let (micros, used) = parse_iso_prefix(input.as_bytes()).expect(input);
            assert_eq!(format_rfc3339(micros), *expected, "{input}");
            assert_eq!(used, *consumed, "{input}");
        }
    }

    #[test]
    fn non_iso_prefixes_are_rejected() {
        for input in [
            "2026-11-27T10:00:00",        // no zone
            "2026-13-27T10:00:00Z",       // month 13
            "2026/11/27T10:00:00Z",       // wrong separators
            "[ 1234.567890] NVRM",        // dmesg
            "2026-11-27T10:00:00.+00:00", // empty fraction
            "",
        ] {
            assert!(parse_iso_prefix(input.as_bytes()).is_none(), "{input}");
        }
    }

    #[test]
    fn human_durations_pick_a_readable_unit() {
        assert_eq!(human_duration(42.0), "42 s");
        assert_eq!(human_duration(750.0), "12.5 minutes");
        assert_eq!(human_duration(3.0 * 3600.0), "3.0 hours");
        assert_eq!(human_duration(5.0 * 86_400.0), "5.0 days");
    }

    #[test]
    fn the_real_clock_is_plausible() {
        let clock = Clock::now();
        assert!(clock.realtime_unix_micros > 1_600_000_000_000_000);
        assert!(clock.monotonic_micros > 0);
        assert_eq!(Clock::with_uptime(3600.0).monotonic_micros, 3_600_000_000);
        assert_eq!(seconds_to_micros(-1.0), 0);
        assert_eq!(seconds_to_micros(f64::NAN), 0);
    }
}
