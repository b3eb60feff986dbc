//! One pass over kernel-log records that keeps only what the Xid analysis needs: the Xid records,
//! the PCI → UUID lines, the oldest and newest timestamps and a few counters. Memory stays bounded
//! however long the log is; non-NVIDIA lines cost one SIMD substring search each.

use std::collections::{BTreeMap, VecDeque};

use schemars::JsonSchema;
use serde::Serialize;

use memchr::memmem;

use super::parse::{
    NvrmFilter, NvrmLine, PciLocation, RecordTime, embedded_since_boot, leading_since_boot,
    parse_kmsg_record, parse_line, parse_nvrm,
};
use super::time::Clock;

/// Bounds on what one read may consume, so a huge or endless log cannot exhaust memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Bytes read from one source at most (a longer file is read from its end: the newest part).
    pub max_bytes: u64,
    /// Records (lines) scanned at most.
    pub max_records: u64,
    /// Xid records kept at most (the oldest are dropped and counted beyond this).
    pub max_xid_records: usize,
    /// Longer lines are cut to this length (an Xid line is a few hundred bytes).
    pub max_line_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_bytes: 256 * 1024 * 1024,
            max_records: 5_000_000,
            max_xid_records: 100_000,
            max_line_bytes: 16 * 1024,
        }
    }
}

/// Which kind of source a kernel log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The `/dev/kmsg` device (or another kmsg-style character device).
    Kmsg,
    /// The `syslog(2)` system call (`klogctl` READ_ALL), what `dmesg` falls back to.
    Syslog,
    /// A saved log file.
    File,
    /// In-memory lines (mock fixtures).
    Lines,
}

/// The source actually read, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SourceUsed {
    pub kind: SourceKind,
    /// The device or file path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl SourceUsed {
    /// "/dev/kmsg", "syslog(2)", "file /var/log/kern.log", "mock lines".
    pub fn describe(&self) -> String {
        match (self.kind, &self.path) {
            (SourceKind::Kmsg, Some(path)) => path.clone(),
            (SourceKind::Kmsg, None) => "/dev/kmsg".to_owned(),
            (SourceKind::Syslog, _) => "syslog(2)".to_owned(),
            (SourceKind::File, Some(path)) => format!("file {path}"),
            (SourceKind::File, None) => "file".to_owned(),
            (SourceKind::Lines, _) => "in-memory log lines".to_owned(),
        }
    }
}

/// One NVRM Xid line with its record's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidRecord {
    pub time: RecordTime,
    /// `/dev/kmsg` sequence number.
    pub sequence: Option<u64>,
    pub pci: PciLocation,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    pub code: u32,
    pub pid: Option<u32>,
    pub process_name: Option<String>,
    pub message: String,
}

/// What one read of the kernel log yielded (Xid records only, plus coverage facts).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelLog {
    pub source: SourceUsed,
    /// The clocks read right after the log was read: the basis of wall-clock conversion.
    pub clock: Clock,
    /// Records (lines) scanned.
    pub records_scanned: u64,
    /// Time of the oldest record with a recognised timestamp.
    pub oldest: Option<RecordTime>,
    /// Time of the newest record with a recognised timestamp.
    pub newest: Option<RecordTime>,
    /// The Xid records, in log order (oldest first).
    pub xids: Vec<XidRecord>,
    /// Xid records dropped because `max_xid_records` was reached (the oldest ones).
    pub xids_dropped: u64,
    /// Lines that look like Xid lines but do not parse.
    pub malformed_xid_lines: u64,
    /// Up to three of those lines with the reason, for the report's notes.
    pub malformed_examples: Vec<String>,
    /// `NVRM: GPU at PCI:…: GPU-<uuid>` lines: the driver's own PCI → UUID map.
    pub uuids_from_log: BTreeMap<PciLocation, String>,
    /// `/dev/kmsg` reported records overwritten while reading (EPIPE).
    pub lost_records: u64,
    /// Why the read stopped before the end of the source, if it did.
    pub stopped_early: Option<String>,
    /// Lines cut to `max_line_bytes`.
    pub truncated_lines: u64,
}

impl KernelLog {
    /// Scans in-memory lines (mock fixtures, tests) with a given clock.
    pub fn from_lines<S: AsRef<str>>(
        lines: &[S],
        source: SourceUsed,
        clock: Clock,
        limits: &ReadLimits,
    ) -> KernelLog {
        let mut scanner = LogScanner::new(limits);
        for line in lines {
            if !scanner.push_line(line.as_ref().as_bytes()) {
                break;
            }
        }
        scanner.finish(source, clock)
    }
}

const MALFORMED_EXAMPLES: usize = 3;
/// `NVRM: `, what [`NvrmFilter`] looks for.
const NVRM_PREFIX_LEN: usize = 6;

/// A line that starts a record: not empty, not a kmsg dictionary line or dmesg continuation line (both
/// start with white space and belong to the previous record).
fn is_record(line: &[u8]) -> bool {
    !matches!(line.first(), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// The streaming accumulator behind every reader.
pub(crate) struct LogScanner {
    filter: NvrmFilter,
    /// `kernel: [`: the since-boot stamp syslog daemons keep inside kernel lines.
    kernel_stamp: memmem::Finder<'static>,
    limits: ReadLimits,
    records_scanned: u64,
    oldest: Option<RecordTime>,
    newest: Option<RecordTime>,
    xids: VecDeque<XidRecord>,
    xids_dropped: u64,
    malformed_xid_lines: u64,
    malformed_examples: Vec<String>,
    uuids_from_log: BTreeMap<PciLocation, String>,
    pub(crate) lost_records: u64,
    pub(crate) stopped_early: Option<String>,
    pub(crate) truncated_lines: u64,
}

impl LogScanner {
    pub(crate) fn new(limits: &ReadLimits) -> LogScanner {
        LogScanner {
            filter: NvrmFilter::new(),
            kernel_stamp: memmem::Finder::new(b"kernel: ["),
            limits: *limits,
            records_scanned: 0,
            oldest: None,
            newest: None,
            xids: VecDeque::new(),
            xids_dropped: 0,
            malformed_xid_lines: 0,
            malformed_examples: Vec::new(),
            uuids_from_log: BTreeMap::new(),
            lost_records: 0,
            stopped_early: None,
            truncated_lines: 0,
        }
    }

    /// Takes one text line of any supported format; returns false once `max_records` is reached.
    pub(crate) fn push_line(&mut self, line: &[u8]) -> bool {
        if self.at_record_limit() {
            return false;
        }
        let line = self.cap(line);
        if !is_record(line) {
            return true;
        }
        let parsed = parse_line(line);
        self.take(parsed.time, parsed.sequence, parsed.text);
        true
    }

    /// Takes a run of whole lines, each ending in `\n`: the same as [`LogScanner::push_line`] on every
    /// line, only faster. One substring search over the whole run finds the lines that can matter
    /// (`NVRM: Xid…`, `NVRM: GPU at …`); every other line costs a newline search and a count, and
    /// timestamps are parsed only where coverage needs them (until the first timed record, and the
    /// run's last record). Returns false once `max_records` is reached.
    pub(crate) fn push_lines(&mut self, text: &[u8]) -> bool {
        let Some(newest) = self.last_record_time(text, false) else {
            // The run's last record has no timestamp: the newest timed record is somewhere before it,
            // and taking every line the plain way finds it.
            return text
                .split_inclusive(|b| *b == b'\n')
                .all(|line| self.push_line(line.strip_suffix(b"\n").unwrap_or(line)));
        };
        let mut hit = self.next_relevant(text, 0);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text) {
            let line = &text[start..end];
            let line_start = start;
            start = end + 1;
            let relevant = hit.is_some_and(|at| at < end);
            if relevant {
                hit = self.next_relevant(text, start);
            }
            let kept =
                if relevant || self.oldest.is_none() || line.len() > self.limits.max_line_bytes {
                    self.push_line(line)
                } else if self.at_record_limit() {
                    false
                } else {
                    self.records_scanned += u64::from(is_record(line));
                    true
                };
            if !kept {
                // Stopped at the record limit: the newest record scanned is before this line.
                if let Some(time) = self.last_record_time(&text[..line_start], true) {
                    self.newest = Some(time);
                }
                return false;
            }
        }
        self.newest = Some(newest);
        true
    }

    /// The offset of the next `NVRM: Xid` or `NVRM: GPU at ` in `text` at or after `from`: the only
    /// NVRM lines [`parse_nvrm`] does not answer [`NvrmLine::Other`] for.
    fn next_relevant(&self, text: &[u8], mut from: usize) -> Option<usize> {
        loop {
            let at = from + self.filter.find(&text[from..])?;
            let after = &text[at + NVRM_PREFIX_LEN..];
            if after.starts_with(b"Xid") || after.starts_with(b"GPU at ") {
                return Some(at);
            }
            from = at + NVRM_PREFIX_LEN;
        }
    }

    /// The time of the last record in `text` (whole lines, each ending in `\n`) when it has one; with
    /// `skip_untimed`, the time of the last record that has one.
    fn last_record_time(&self, text: &[u8], skip_untimed: bool) -> Option<RecordTime> {
        let body = text.strip_suffix(b"\n")?;
        for line in body.rsplit(|b| *b == b'\n') {
            if !is_record(line) {
                continue;
            }
            let line = &line[..line.len().min(self.limits.max_line_bytes)];
            let parsed = parse_line(line);
            match self.stamped(parsed.time, parsed.text) {
                RecordTime::Unknown if skip_untimed => {}
                RecordTime::Unknown => return None,
                known => return Some(known),
            }
        }
        None
    }

    /// Takes one `/dev/kmsg` record as read(2) returned it; returns false once `max_records` is reached.
    pub(crate) fn push_kmsg_record(&mut self, record: &[u8]) -> bool {
        if self.at_record_limit() {
            return false;
        }
        let record = self.cap(record);
        match parse_kmsg_record(record) {
            Some(line) => {
                self.take(line.time, line.sequence, line.text);
                true
            }
            None => self.push_line(record),
        }
    }

    fn cap<'a>(&mut self, line: &'a [u8]) -> &'a [u8] {
        if line.len() > self.limits.max_line_bytes {
            self.truncated_lines += 1;
            &line[..self.limits.max_line_bytes]
        } else {
            line
        }
    }

    fn at_record_limit(&mut self) -> bool {
        if self.records_scanned < self.limits.max_records {
            return false;
        }
        self.stopped_early = Some(format!(
            "stopped after {} records (the agent's read limit)",
            self.limits.max_records
        ));
        true
    }

    fn take(&mut self, time: RecordTime, sequence: Option<u64>, text: &[u8]) {
        self.records_scanned += 1;
        let time = self.stamped(time, text);
        if time != RecordTime::Unknown {
            self.oldest.get_or_insert(time);
            self.newest = Some(time);
        }
        let Some(at) = self.filter.find(text) else {
            return;
        };
        let nvrm = String::from_utf8_lossy(&text[at..]);
        match parse_nvrm(&nvrm) {
            NvrmLine::Xid(xid) => {
                let time = match time {
                    RecordTime::Unknown => embedded_since_boot(&text[..at])
                        .map_or(RecordTime::Unknown, RecordTime::SinceBoot),
                    known => known,
                };
                if self.xids.len() >= self.limits.max_xid_records {
                    self.xids.pop_front();
                    self.xids_dropped += 1;
                }
                self.xids.push_back(XidRecord {
                    time,
                    sequence,
                    pci: xid.pci,
                    gpu_instance_id: xid.gpu_instance_id,
                    compute_instance_id: xid.compute_instance_id,
                    code: xid.code,
                    pid: xid.pid,
                    process_name: xid.process_name.map(str::to_owned),
                    message: xid.message.to_owned(),
                });
            }
            NvrmLine::GpuUuid { pci, uuid } => {
                // The driver repeats the line before every Xid: allocate only when it says something new.
                if self
                    .uuids_from_log
                    .get(&pci)
                    .is_none_or(|known| known != uuid)
                {
                    self.uuids_from_log.insert(pci, uuid.to_owned());
                }
            }
            NvrmLine::MalformedXid(reason) => {
                self.malformed_xid_lines += 1;
                if self.malformed_examples.len() < MALFORMED_EXAMPLES {
                    let shown: String = nvrm.chars().take(160).collect();
                    self.malformed_examples.push(format!("{reason}: {shown}"));
                }
            }
            NvrmLine::Other => {}
        }
    }

    /// A record's time: its prefix's, else the `kernel: [ seconds]` stamp syslog daemons keep.
    fn stamped(&self, time: RecordTime, text: &[u8]) -> RecordTime {
        match time {
            RecordTime::Unknown => self
                .kernel_stamp
                .find(text)
                .and_then(|at| leading_since_boot(&text[at + 8..]))
                .map_or(RecordTime::Unknown, RecordTime::SinceBoot),
            known => known,
        }
    }

    pub(crate) fn finish(self, source: SourceUsed, clock: Clock) -> KernelLog {
        KernelLog {
            source,
            clock,
            records_scanned: self.records_scanned,
            oldest: self.oldest,
            newest: self.newest,
            xids: self.xids.into(),
            xids_dropped: self.xids_dropped,
            malformed_xid_lines: self.malformed_xid_lines,
            malformed_examples: self.malformed_examples,
            uuids_from_log: self.uuids_from_log,
            lost_records: self.lost_records,
            stopped_early: self.stopped_early,
            truncated_lines: self.truncated_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        realtime_unix_micros: 1_795_773_600_000_000,
        monotonic_micros: 7_200_000_000,
    };

    fn lines_source() -> SourceUsed {
        SourceUsed {
            kind: SourceKind::Lines,
            path: None,
        }
    }

    #[test]
    fn keeps_xids_uuids_and_coverage_and_skips_everything_else() {
        let lines = [
            "[    0.000000] Linux version 6.8.0-45-generic",
            "[  100.000001] usb 1-1: new high-speed USB device",
            "[ 1843.100000] NVRM: GPU at PCI:0000:b3:00: GPU-6f1e2d3c-0000-1111-2222-333344445555",
            "[ 1843.308145] NVRM: Xid (PCI:0000:b3:00): 79, pid=1234, name=python3, GPU has fallen off the bus.",
            "               NVRM: (PCI ID: 10de:26b5) installed in this system has",
            "[ 1843.400000] NVRM: Xid (PCI:0000:b3:00): seventy-nine",
            "[ 1900.000000] eth0: link up",
        ];
        let log = KernelLog::from_lines(&lines, lines_source(), CLOCK, &ReadLimits::default());
        assert_eq!(log.records_scanned, 6);
        assert_eq!(log.oldest, Some(RecordTime::SinceBoot(0)));
        assert_eq!(log.newest, Some(RecordTime::SinceBoot(1_900_000_000)));
        assert_eq!(log.xids.len(), 1);
        let xid = &log.xids[0];
        assert_eq!(
            (xid.code, xid.pid, xid.time),
            (79, Some(1234), RecordTime::SinceBoot(1_843_308_145))
        );
        assert_eq!(xid.process_name.as_deref(), Some("python3"));
        assert_eq!(
            log.uuids_from_log.values().collect::<Vec<_>>(),
            ["GPU-6f1e2d3c-0000-1111-2222-333344445555"]
        );
        assert_eq!(log.malformed_xid_lines, 1);
        assert_eq!(
            log.malformed_examples,
            ["no Xid code after the PCI location: NVRM: Xid (PCI:0000:b3:00): seventy-nine"]
        );
    }

    #[test]
    fn syslog_file_lines_keep_their_embedded_since_boot_stamp() {
        let lines = [
            "Nov 27 10:00:00 node-1 kernel: [ 1234.500000] NVRM: Xid (PCI:0000:3b:00): 13, pid=9, name=a, Graphics Exception",
        ];
        let log = KernelLog::from_lines(&lines, lines_source(), CLOCK, &ReadLimits::default());
        assert_eq!(log.xids[0].time, RecordTime::SinceBoot(1_234_500_000));
        assert_eq!(
            log.oldest,
            Some(RecordTime::SinceBoot(1_234_500_000)),
            "coverage uses the stamp too"
        );
        let lines = ["node-1 [ 77.0] NVRM: Xid (PCI:0000:3b:00): 13, no kernel: tag"];
        let log = KernelLog::from_lines(&lines, lines_source(), CLOCK, &ReadLimits::default());
        assert_eq!(log.xids[0].time, RecordTime::SinceBoot(77_000_000));
        assert_eq!(log.oldest, None);
    }

    #[test]
    fn limits_bound_memory_and_work() {
        let limits = ReadLimits {
            max_xid_records: 2,
            max_records: 4,
            max_line_bytes: 120,
            ..ReadLimits::default()
        };
        let lines: Vec<String> = (0..6)
            .map(|i| {
                format!(
                    "[ {i}.0] NVRM: Xid (PCI:0000:3b:00): 13, pid={i}, name=a, {}",
                    "x".repeat(i * 40)
                )
            })
            .collect();
        let log = KernelLog::from_lines(&lines, lines_source(), CLOCK, &limits);
        assert_eq!(log.records_scanned, 4);
        assert_eq!(
            log.xids.iter().map(|x| x.pid).collect::<Vec<_>>(),
            [Some(2), Some(3)]
        );
        assert_eq!(log.xids_dropped, 2);
        assert_eq!(log.truncated_lines, 2);
        assert_eq!(
            log.stopped_early.as_deref(),
            Some("stopped after 4 records (the agent's read limit)")
        );
    }

    #[test]
    fn kmsg_records_and_lines_feed_the_same_scanner() {
        let mut scanner = LogScanner::new(&ReadLimits::default());
        assert!(scanner.push_kmsg_record(b"4,10,5000000,-;NVRM: Xid (PCI:0000:3b:00): 31, pid=7, name=b, MMU Fault\n SUBSYSTEM=pci\n"));
        assert!(scanner.push_kmsg_record(b"[ 6.0] not a kmsg record"));
        let log = scanner.finish(
            SourceUsed {
                kind: SourceKind::Kmsg,
                path: None,
            },
            CLOCK,
        );
        assert_eq!(log.records_scanned, 2);
        assert_eq!(log.xids[0].sequence, Some(10));
        assert_eq!(log.newest, Some(RecordTime::SinceBoot(6_000_000)));
    }
}
