//! Kernel-log line parsing: record prefixes of every format we read, NVRM Xid lines of several driver
//! generations, and PCI locations. Pure, borrowed, allocation-free.
//!
//! Line formats (auto-detected per line):
//! - `/dev/kmsg` records: `<prio>,<seq>,<usec>,<flags>[,…];<text>` (continuation lines start with a space)
//! - `syslog(2)` / `dmesg --raw`: `<prio>[  seconds.micros] text` (optionally `[T123]` caller id)
//! - `dmesg`: `[ 1234.567890] text`
//! - ISO wall clock: `2026-11-27T10:00:00,123456+00:00 text` (`dmesg --time-format iso`, journalctl short-iso)
//! - anything else: the whole line is text with an unknown time (`Nov 27 … kernel: NVRM: …`)
//!
//! Xid text: `NVRM: Xid (PCI:0000:3b:00[ GPU-I:05[ GPU-CI:01]]): 79, pid=1234, name=python3, message`;
//! older drivers omit `PCI:`, `pid=` and `name=`; `pid='<unknown>', name=<unknown>` when unknown.

use std::fmt;

use memchr::memmem;

use super::time::parse_iso_prefix;

/// A GPU's PCI location as the kernel log names it: domain, bus, device (no function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciLocation {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
}

impl PciLocation {
    /// Parses `[PCI:]domain:bus:device[.function]` in any hex case and domain width: the kernel's
    /// `0000:3b:00` and NVML's `00000000:3B:00.0` give the same location.
    pub fn parse(text: &str) -> Option<PciLocation> {
        let text = text.trim();
        let text = text
            .strip_prefix("PCI:")
            .or_else(|| text.strip_prefix("pci:"))
            .unwrap_or(text);
        let mut parts = text.split(':');
        let (domain, bus, device_function) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let device = match device_function.split_once('.') {
            Some((device, function)) if !function.is_empty() && function.len() <= 1 => {
                u8::from_str_radix(function, 16).ok().filter(|f| *f <= 7)?;
                device
            }
            Some(_) => return None,
            None => device_function,
        };
        let hex = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        let device = hex(device, 2).filter(|d| *d <= 0x1f)?;
        Some(PciLocation {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device: u8::try_from(device).ok()?,
        })
    }

    /// From NVML's numeric `pci_info()` fields.
    pub fn from_numeric(domain: u32, bus: u32, device: u32) -> Option<PciLocation> {
        Some(PciLocation {
            domain,
            bus: u8::try_from(bus).ok()?,
            device: u8::try_from(device).ok()?,
        })
    }
}

impl fmt::Display for PciLocation {
    /// The kernel's form: `0000:3b:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}",
            self.domain, self.bus, self.device
        )
    }
}

/// When a record was logged, as far as its format tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTime {
    /// Microseconds since boot (`/dev/kmsg`, `syslog(2)`, `dmesg`).
    SinceBoot(u64),
    /// Microseconds since the Unix epoch (ISO-stamped files).
    Wall(i64),
    /// No timestamp we recognise.
    Unknown,
}

/// One log record's prefix split from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub time: RecordTime,
    /// `/dev/kmsg` sequence number.
    pub sequence: Option<u64>,
    pub text: &'a [u8],
}

/// Splits any supported line format into time, sequence and text.
pub fn parse_line(line: &[u8]) -> LogLine<'_> {
    let line = trim_line_end(line);
    match line.first() {
        Some(b'<') => {
            if let Some(end) = syslog_priority_end(line) {
                let (time, text) = split_bracket_time(&line[end..]);
                return LogLine {
                    time,
                    sequence: None,
                    text,
                };
            }
        }
        Some(b'[') => {
            let (time, text) = split_bracket_time(line);
            return LogLine {
                time,
                sequence: None,
                text,
            };
        }
        Some(b'0'..=b'9') => {
            if let Some(record) = parse_kmsg_prefix(line) {
                return record;
            }
            if let Some((micros, used)) = parse_iso_prefix(line) {
                return LogLine {
                    time: RecordTime::Wall(micros),
                    sequence: None,
                    text: trim_start(&line[used..]),
                };
            }
        }
        _ => {}
    }
    LogLine {
        time: RecordTime::Unknown,
        sequence: None,
        text: line,
    }
}

/// Parses one `/dev/kmsg` record as read(2) returns it: the first line only (continuation lines with
/// `KEY=value` follow after a newline). `None` when it is not a kmsg record.
pub fn parse_kmsg_record(record: &[u8]) -> Option<LogLine<'_>> {
    let first = match memchr::memchr(b'\n', record) {
        Some(end) => &record[..end],
        None => record,
    };
    parse_kmsg_prefix(first)
}

fn parse_kmsg_prefix(line: &[u8]) -> Option<LogLine<'_>> {
    // Fail fast on lines that merely start with a digit: the priority is at most 4 digits then `,`.
    let first_comma = line.iter().take(5).position(|b| !b.is_ascii_digit())?;
    if first_comma == 0 || line[first_comma] != b',' {
        return None;
    }
    let semicolon = memchr::memchr(b';', line)?;
    let mut fields = line[..semicolon].split(|b| *b == b',');
    let _priority = ascii_number(fields.next()?)?;
    let sequence = ascii_number(fields.next()?)?;
    let micros = ascii_number(fields.next()?)?;
    let _flags = fields.next()?;
    Some(LogLine {
        time: RecordTime::SinceBoot(micros),
        sequence: Some(sequence),
        text: &line[semicolon + 1..],
    })
}

fn syslog_priority_end(line: &[u8]) -> Option<usize> {
    let close = line.iter().take(6).position(|b| *b == b'>')?;
    (close > 1 && line[1..close].iter().all(u8::is_ascii_digit)).then_some(close + 1)
}

/// `[  1234.567890] text` → (since boot, text); also skips a `[T123]`/`[C1]` caller id.
fn split_bracket_time(line: &[u8]) -> (RecordTime, &[u8]) {
    let Some(rest) = line.strip_prefix(b"[") else {
        return (RecordTime::Unknown, line);
    };
    let Some(close) = rest.iter().take(32).position(|b| *b == b']') else {
        return (RecordTime::Unknown, line);
    };
    let Some(micros) = parse_seconds_micros(trim_start(&rest[..close])) else {
        return (RecordTime::Unknown, line);
    };
    let mut text = trim_start(&rest[close + 1..]);
    if let Some(caller) = text.strip_prefix(b"[")
        && let Some(end) = caller.iter().take(12).position(|b| *b == b']')
        && matches!(caller.first(), Some(b'T' | b'C'))
        && caller[1..end].iter().all(u8::is_ascii_digit)
    {
        text = trim_start(&caller[end + 1..]);
    }
    (RecordTime::SinceBoot(micros), text)
}

/// A `[ 1234.567890]` stamp right before `NVRM:` inside otherwise unstamped text, as syslog files
/// keep it (`Nov 27 10:00:00 host kernel: [ 1234.567890] NVRM: …`).
pub fn embedded_since_boot(text_before_nvrm: &[u8]) -> Option<u64> {
    let open = memchr::memrchr(b'[', text_before_nvrm)?;
    let (time, rest) = split_bracket_time(&text_before_nvrm[open..]);
    match time {
        RecordTime::SinceBoot(micros) if rest.iter().all(|b| *b == b' ') => Some(micros),
        _ => None,
    }
}

/// A `[ 1234.567890]` stamp at the start of `text`.
pub fn leading_since_boot(text: &[u8]) -> Option<u64> {
    match split_bracket_time(text).0 {
        RecordTime::SinceBoot(micros) => Some(micros),
        _ => None,
    }
}

/// `1234.567890` → 1_234_567_890 µs (fractions shorter than 6 digits are scaled).
fn parse_seconds_micros(text: &[u8]) -> Option<u64> {
    let (seconds, fraction) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let seconds = ascii_number(seconds)?;
    let mut micros: u64 = 0;
    let mut scale = 100_000;
    for digit in fraction {
        if !digit.is_ascii_digit() {
            return None;
        }
        micros += u64::from(digit - b'0') * scale;
        scale /= 10;
    }
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

fn ascii_number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn trim_start(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(text.len());
    &text[start..]
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// What an `NVRM:` line says, as far as this tool cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NvrmLine<'a> {
    Xid(XidLine<'a>),
    /// `NVRM: GPU at PCI:0000:3b:00: GPU-<uuid>`, printed before a GPU's first Xid.
    GpuUuid {
        pci: PciLocation,
        uuid: &'a str,
    },
    /// Looks like an Xid line but does not parse (the reason is for the report's notes).
    MalformedXid(&'static str),
    Other,
}

/// The fields of one NVRM Xid line, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidLine<'a> {
    pub pci: PciLocation,
    /// MIG GPU instance (`GPU-I:05`).
    pub gpu_instance_id: Option<u32>,
    /// MIG compute instance (`GPU-CI:01`).
    pub compute_instance_id: Option<u32>,
    pub code: u32,
    pub pid: Option<u32>,
    pub process_name: Option<&'a str>,
    /// The driver's free text after the code (and pid/name).
    pub message: &'a str,
}

/// Cheap check used before any parsing: does this line mention the NVIDIA resource manager?
pub struct NvrmFilter {
    finder: memmem::Finder<'static>,
}

impl NvrmFilter {
    pub fn new() -> NvrmFilter {
        NvrmFilter {
            finder: memmem::Finder::new(b"NVRM: "),
        }
    }

    /// Offset of `NVRM: ` in `text`, if any.
    pub fn find(&self, text: &[u8]) -> Option<usize> {
        self.finder.find(text)
    }
}

impl Default for NvrmFilter {
    fn default() -> Self {
        NvrmFilter::new()
    }
}

/// Parses the text starting at `NVRM: `.
pub fn parse_nvrm(text: &str) -> NvrmLine<'_> {
    let Some(rest) = text.strip_prefix("NVRM: ") else {
        return NvrmLine::Other;
    };
    if let Some(rest) = rest.strip_prefix("Xid") {
        return match parse_xid(rest) {
            Ok(line) => NvrmLine::Xid(line),
            Err(reason) => NvrmLine::MalformedXid(reason),
        };
    }
    if let Some(rest) = rest.strip_prefix("GPU at ")
        && let Some((pci, uuid)) = rest.rsplit_once(": ")
        && let Some(pci) = PciLocation::parse(pci)
        && uuid.starts_with("GPU-")
    {
        return NvrmLine::GpuUuid {
            pci,
            uuid: uuid.trim(),
        };
    }
    NvrmLine::Other
}

fn parse_xid(rest: &str) -> Result<XidLine<'_>, &'static str> {
    let rest = rest.trim_start();
    let inner_and_rest = rest.strip_prefix('(').ok_or("no `(` after `Xid`")?;
    let close = inner_and_rest
        .find(')')
        .ok_or("no `)` closing the PCI location")?;
    let inner = &inner_and_rest[..close];
    let mut tokens = inner.split_whitespace();
    let pci = tokens
        .next()
        .and_then(PciLocation::parse)
        .ok_or("PCI location is not domain:bus:device")?;
    let (mut gpu_instance_id, mut compute_instance_id) = (None, None);
    for token in tokens {
        if let Some(id) = token.strip_prefix("GPU-I:") {
            gpu_instance_id = id.parse().ok();
        } else if let Some(id) = token.strip_prefix("GPU-CI:") {
            compute_instance_id = id.parse().ok();
        }
    }
    let after = inner_and_rest[close + 1..]
        .trim_start()
        .strip_prefix(':')
        .ok_or("no `:` after the PCI location")?
        .trim_start();
    let digits_end = after
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(after.len());
    if digits_end == 0 || digits_end > 9 {
        return Err("no Xid code after the PCI location");
    }
    let code: u32 = after[..digits_end]
        .parse()
        .map_err(|_| "Xid code out of range")?;
    let mut rest = after[digits_end..].trim_start();
    rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    let mut pid = None;
    let mut process_name = None;
    if let Some(value) = rest.strip_prefix("pid=") {
        let (raw, tail) = split_field(value);
        pid = raw.trim_matches('\'').parse().ok();
        rest = tail;
    }
    if let Some(value) = rest.strip_prefix("name=") {
        let (raw, tail) = split_field(value);
        let raw = raw.trim_matches('\'');
        process_name = (!raw.is_empty() && raw != "<unknown>").then_some(raw);
        rest = tail;
    }
    Ok(XidLine {
        pci,
        gpu_instance_id,
        compute_instance_id,
        code,
        pid,
        process_name,
        message: rest.trim_end(),
    })
}

/// Splits `value, rest` at the first `, ` (the driver's field separator).
fn split_field(value: &str) -> (&str, &str) {
    match value.find(", ") {
        Some(comma) => (&value[..comma], value[comma + 2..].trim_start()),
        None => (value.trim_end_matches(','), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xid(text: &str) -> XidLine<'_> {
        match parse_nvrm(text) {
            NvrmLine::Xid(line) => line,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn pci(domain: u32, bus: u8, device: u8) -> PciLocation {
        PciLocation {
            domain,
            bus,
            device,
        }
    }

    #[test]
    fn pci_locations_match_numerically_across_kernel_and_nvml_forms() {
        let kernel = PciLocation::parse("0000:3b:00").expect("kernel form");
        assert_eq!(kernel, pci(0, 0x3b, 0));
        assert_eq!(PciLocation::parse("00000000:3B:00.0"), Some(kernel));
        assert_eq!(PciLocation::parse("PCI:0000:3B:00"), Some(kernel));
        assert_eq!(PciLocation::parse("0000:3b:00.0"), Some(kernel));
        assert_ne!(PciLocation::parse("0000:b3:00"), Some(kernel));
        assert_eq!(PciLocation::parse("10000:01:00"), Some(pci(0x10000, 1, 0)));
        assert_eq!(
            PciLocation::parse("0018:01:00").map(|p| p.to_string()),
            Some("0018:01:00".into())
        );
        assert_eq!(
            PciLocation::from_numeric(0, 0xb3, 0).map(|p| p.to_string()),
            Some("0000:b3:00".into())
        );
        for bad in [
            "",
            "3b:00",
            "0000:3b",
            "0000:3g:00",
            "0000:3b:00.9",
            "0000:3b:20",
            "0:0:0:0",
            "000000000:3b:00",
        ] {
            assert_eq!(PciLocation::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn line_prefixes_of_every_format_split_off() {
        let cases: &[(&str, RecordTime, Option<u64>, &str)] = &[
            (
                "4,1234,5678901234,-;NVRM: Xid",
                RecordTime::SinceBoot(5_678_901_234),
                Some(1234),
                "NVRM: Xid",
            ),
            (
                "6,17,95000,-,caller=T42;NVRM: x",
                RecordTime::SinceBoot(95_000),
                Some(17),
                "NVRM: x",
            ),
            (
                "<4>[  123.456789] NVRM: x",
                RecordTime::SinceBoot(123_456_789),
                None,
                "NVRM: x",
            ),
            (
                "<3>[ 5.5] [T123] NVRM: x",
                RecordTime::SinceBoot(5_500_000),
                None,
                "NVRM: x",
            ),
            (
                "[ 1234.567890] NVRM: x\n",
                RecordTime::SinceBoot(1_234_567_890),
                None,
                "NVRM: x",
            ),
            (
                "[1843.308145] NVRM: x\r\n",
                RecordTime::SinceBoot(1_843_308_145),
                None,
                "NVRM: x",
            ),
            (
                "2026-11-27T10:00:00,123456+00:00 NVRM: x",
                RecordTime::Wall(1_795_773_600_123_456),
                None,
                "NVRM: x",
            ),
            (
                "Nov 27 10:00:00 host kernel: NVRM: x",
                RecordTime::Unknown,
                None,
                "Nov 27 10:00:00 host kernel: NVRM: x",
            ),
            (
                "[Sat Jul 11 05:52:47 2026] NVRM: x",
                RecordTime::Unknown,
                None,
                "[Sat Jul 11 05:52:47 2026] NVRM: x",
            ),
            (
                "<not-a-prio> text",
                RecordTime::Unknown,
                None,
                "<not-a-prio> text",
            ),
            (
                "12345 plain text",
                RecordTime::Unknown,
                None,
                "12345 plain text",
            ),
            ("", RecordTime::Unknown, None, ""),
        ];
        for (input, time, sequence, text) in cases {
            let line = parse_line(input.as_bytes());
            assert_eq!(line.time, *time, "{input}");
            assert_eq!(line.sequence, *sequence, "{input}");
            assert_eq!(line.text, text.as_bytes(), "{input}");
        }
    }

    #[test]
    fn kmsg_records_drop_their_continuation_lines() {
        let record = b"3,889,1843308145,-;NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus.\n SUBSYSTEM=pci\n DEVICE=+pci:0000:b3:00.0\n";
        let line = parse_kmsg_record(record).expect("kmsg record");
        assert_eq!(line.sequence, Some(889));
        assert_eq!(
            line.text,
            &b"NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus."[..]
        );
        assert!(parse_kmsg_record(b"[ 1.0] not kmsg").is_none());
    }

    #[test]
    fn xid_lines_of_current_drivers_parse() {
        let line = xid(
            "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.",
        );
        assert_eq!(
            line,
            XidLine {
                pci: pci(0, 0x3b, 0),
                gpu_instance_id: None,
                compute_instance_id: None,
                code: 79,
                pid: Some(1234),
                process_name: Some("python3"),
                message: "GPU has fallen off the bus.",
            }
        );
        let line = xid(
            "NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter",
        );
        assert_eq!((line.code, line.pid, line.process_name), (13, None, None));
        assert_eq!(
            line.message,
            "Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter"
        );
        let line = xid(
            "NVRM: Xid (PCI:0002:00:00): 119, pid=1582259, name=nvc:[driver], Timeout after 6s of waiting for RPC response from GPU1 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20802a02 0x8).",
        );
        assert_eq!(
            (line.pci, line.code, line.pid, line.process_name),
            (pci(2, 0, 0), 119, Some(1_582_259), Some("nvc:[driver]"))
        );
    }

    #[test]
    fn xid_lines_of_older_drivers_and_variants_parse() {
        let line = xid(
            "NVRM: Xid (0000:3b:00): 48, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
        );
        assert_eq!(
            (line.pci, line.code, line.pid, line.process_name),
            (pci(0, 0x3b, 0), 48, None, None)
        );
        assert!(
            line.message
                .starts_with("An uncorrectable double bit error")
        );
        let line = xid(
            "NVRM: Xid (PCI:0000:2a:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
        );
        assert_eq!(
            (line.code, line.message),
            (
                154,
                "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"
            )
        );
        let line = xid(
            "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No",
        );
        assert_eq!(
            (
                line.gpu_instance_id,
                line.compute_instance_id,
                line.pid,
                line.process_name
            ),
            (Some(5), None, Some(7194), None)
        );
        assert_eq!(
            line.message,
            "Contained: CE User Channel (0x9). RST: No, D-RST: No"
        );
        let line = xid(
            "NVRM: Xid (PCI:0000:01:00 GPU-I:02 GPU-CI:01): 43, pid=3188489, name=trigger_xid, channel 0x0b00000a",
        );
        assert_eq!(
            (line.gpu_instance_id, line.compute_instance_id),
            (Some(2), Some(1))
        );
        let line = xid(
            "NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)",
        );
        assert_eq!(
            (line.pci, line.code, line.pid),
            (pci(0x18, 1, 0), 149, None)
        );
        let line = xid(
            "NVRM: Xid (PCI:0000:65:00): 74, pid=<n/a>, name=<unknown>, NVLink: fatal error detected on link 2",
        );
        assert_eq!(
            (line.pid, line.process_name, line.message),
            (None, None, "NVLink: fatal error detected on link 2")
        );
        let line = xid("NVRM: Xid (PCI:0000:3b:00): 38, pid=1659,");
        assert_eq!((line.code, line.pid, line.message), (38, Some(1659), ""));
    }

    #[test]
    fn malformed_xid_lines_say_why() {
        for (text, reason) in [
            (
                "NVRM: Xid (PCI:0000:66:00): abc, pid=1",
                "no Xid code after the PCI location",
            ),
            (
                "NVRM: Xid (PCI:zz:66:00): 13, x",
                "PCI location is not domain:bus:device",
            ),
            ("NVRM: Xid 13, something", "no `(` after `Xid`"),
            (
                "NVRM: Xid (PCI:0000:66:00 13, x",
                "no `)` closing the PCI location",
            ),
            (
                "NVRM: Xid (PCI:0000:66:00) 13, x",
                "no `:` after the PCI location",
            ),
        ] {
            assert_eq!(parse_nvrm(text), NvrmLine::MalformedXid(reason), "{text}");
        }
    }

    #[test]
    fn gpu_uuid_lines_map_pci_to_uuid() {
        assert_eq!(
            parse_nvrm("NVRM: GPU at PCI:0000:01:00: GPU-aeab3757-56a6-7e30-3f7c-1f322454bde2"),
            NvrmLine::GpuUuid {
                pci: pci(0, 1, 0),
                uuid: "GPU-aeab3757-56a6-7e30-3f7c-1f322454bde2"
            }
        );
        assert_eq!(
            parse_nvrm("NVRM: GPU Board Serial Number: 0322518027985"),
            NvrmLine::Other
        );
        assert_eq!(
            parse_nvrm("NVRM: loading NVIDIA UNIX Open Kernel Module"),
            NvrmLine::Other
        );
    }

    #[test]
    fn the_filter_finds_nvrm_anywhere() {
        let filter = NvrmFilter::new();
        assert_eq!(filter.find(b"Nov 27 host kernel: NVRM: Xid"), Some(20));
        assert_eq!(filter.find(b"usb 1-1: new device"), None);
    }
}
