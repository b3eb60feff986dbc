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
mod tests;
