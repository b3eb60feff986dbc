//! The history on disk: segment files of length-prefixed, checksummed records
//! (`docs/history-format.md`). One writer appends; any number of readers read while it writes.
//!
//! Why this shape: appends never rewrite a byte, so a reader (or a writer killed mid-`write`) can at
//! worst meet a torn *last* record, which its length and CRC-32 reject; a restarted writer opens a new
//! segment instead of appending after a torn tail; retention and a full volume delete whole segments,
//! oldest first, with one `unlink` each. Samples and minutes are binary ([`super::codec`]): a day of
//! 8 GPUs decodes in milliseconds; headers and skipped ticks stay JSON, readable with `jq`. Version 1
//! segments (every record JSON) are still read.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::aggregate::MinuteAggregate;
use super::codec;
use super::sample::{GpuSample, XidSample};

/// The first 8 bytes of every segment this agent writes: format name and version 2.
pub const MAGIC: &[u8; 8] = b"GPUHIST2";
/// The first 8 bytes of a version 1 segment (every record JSON), which readers still accept.
pub const MAGIC_V1: &[u8; 8] = b"GPUHIST1";
/// The format's name in segment headers.
pub const FORMAT: &str = "k8s-mcp-agent/gpu-history";
/// The record format version this agent writes into segment headers.
pub const VERSION: u32 = 2;
/// The versions a reader accepts.
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];
/// Longest record a reader accepts (a longer length field means corruption).
pub const MAX_RECORD_BYTES: u32 = 4 * 1024 * 1024;
/// Bytes before each record's payload: length (u32 LE) and CRC-32 (u32 LE) of the payload.
const RECORD_HEADER: usize = 8;

/// Bytes read from a segment at a time (below the allocator's mmap threshold, so the buffer is
/// reused heap, not fresh pages per file).
const READ_BUFFER: usize = 64 * 1024;

/// The two resolutions the history keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Every sample.
    Raw,
    /// One-minute aggregates.
    Minute,
}

impl Tier {
    fn prefix(self) -> &'static str {
        match self {
            Tier::Raw => "raw-",
            Tier::Minute => "min-",
        }
    }

    /// `raw` or `minute`, as in segment headers.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "minute",
        }
    }
}

/// The first record of every segment: what wrote it, when, and at which interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub format: String,
    pub version: u32,
    pub tier: String,
    /// When the writer opened this segment (ms since the epoch).
    pub started_ms: i64,
    /// When the writing process started; a new value means the agent restarted.
    pub writer_started_ms: i64,
    pub interval_ms: u64,
    pub writer: String,
}

/// One record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum Record {
    #[serde(rename = "h")]
    Header(SegmentHeader),
    /// Every GPU at one tick, and the Xids logged since the previous tick.
    #[serde(rename = "s")]
    Sample {
        t: i64,
        gpus: Vec<GpuSample>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        xids: Vec<XidSample>,
    },
    /// A tick without a sample, and why (a hung NVML call, a node-level NVML error).
    #[serde(rename = "x")]
    Skipped { t: i64, reason: String },
    #[serde(rename = "m")]
    Minute(MinuteAggregate),
}

impl Record {
    /// The record's time (ms since the epoch).
    pub fn time_ms(&self) -> i64 {
        match self {
            Record::Header(h) => h.started_ms,
            Record::Sample { t, .. } | Record::Skipped { t, .. } => *t,
            Record::Minute(m) => m.t,
        }
    }
}

/// Where and how much history is kept.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub dir: PathBuf,
    /// How long every sample is kept.
    pub raw_retention: Duration,
    /// How long one-minute aggregates are kept.
    pub minute_retention: Duration,
    /// The most bytes the segments may take together (the volume's size, less some room).
    pub max_bytes: u64,
    /// The sampling interval, written into segment headers.
    pub interval: Duration,
}

impl StoreOptions {
    fn retention(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Raw => self.raw_retention,
            Tier::Minute => self.minute_retention,
        }
    }

    /// How long one segment of `tier` stays open: a sixth of the retention (at least a minute), so
    /// retention drops data in sixths.
    fn segment_span_ms(&self, tier: Tier) -> i64 {
        (self.retention(tier).as_millis() as i64 / 6).max(60_000)
    }
}

/// A segment file found in the history directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub tier: Tier,
    pub started_ms: i64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Lists the segments in `dir`, oldest first per tier; other files are returned as `foreign`.
pub fn list_segments(dir: &Path) -> io::Result<(Vec<SegmentFile>, Vec<PathBuf>)> {
    let mut segments = Vec::new();
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let parsed = [Tier::Raw, Tier::Minute].into_iter().find_map(|tier| {
            let start = name.strip_prefix(tier.prefix())?.strip_suffix(".seg")?;
            Some((tier, start.parse::<i64>().ok()?))
        });
        match parsed {
            Some((tier, started_ms)) => {
                let bytes = entry.metadata().map_or(0, |m| m.len());
                segments.push(SegmentFile {
                    tier,
                    started_ms,
                    path,
                    bytes,
                });
            }
            // The writer's own temporary files never exist (segments are appended in place).
            None => foreign.push(path),
        }
    }
    segments.sort_by_key(|s| (s.tier, s.started_ms));
    foreign.sort();
    Ok((segments, foreign))
}

/// Encodes one record: length, CRC-32 of the payload, payload (binary for samples and minutes,
/// JSON for the rest).
pub fn encode(record: &Record) -> Vec<u8> {
    let payload = match record {
        Record::Sample { t, gpus, xids } => codec::encode_sample(*t, gpus, xids),
        Record::Minute(m) => codec::encode_minute(m),
        other => serde_json::to_vec(other).unwrap_or_default(),
    };
    frame(&payload)
}

/// Frames a payload: length, CRC-32, payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What decoding one segment's bytes yielded.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Why decoding stopped early, if it did (`None` = the whole file was read).
    pub problem: Option<DecodeProblem>,
}

/// Why a segment could not be read to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeProblem {
    /// Not a history segment (wrong magic): skipped entirely.
    Foreign,
    /// The last record is incomplete: the writer was killed mid-write, or is writing right now.
    TornTail { offset: usize },
    /// A record whose length or checksum is wrong, with more data after it: the rest is skipped.
    Corrupt { offset: usize, why: String },
}

/// Decodes a segment's bytes (pure).
pub fn decode(bytes: &[u8]) -> Decoded {
    decode_from(bytes)
}

/// Decodes a segment as it is read, one record at a time: a day of history is never held as bytes,
/// so a read touches a small buffer instead of fresh pages the size of each file.
pub fn decode_from(mut input: impl BufRead) -> Decoded {
    let mut out = Decoded::default();
    let mut magic = [0u8; MAGIC.len()];
    let got = match fill(&mut input, &mut magic) {
        Ok(n) => n,
        Err(e) => return read_failed(out, 0, &e),
    };
    if got < MAGIC.len() && MAGIC.starts_with(&magic[..got]) {
        // A segment just created: its first bytes are not written yet.
        out.problem = Some(DecodeProblem::TornTail { offset: 0 });
        return out;
    }
    if magic != *MAGIC && magic != *MAGIC_V1 {
        out.problem = Some(DecodeProblem::Foreign);
        return out;
    }
    let mut at = MAGIC.len();
    let mut payload = Vec::new();
    let mut names = codec::Names::default();
    loop {
        let mut header = [0u8; RECORD_HEADER];
        match fill(&mut input, &mut header) {
            Ok(0) => break,
            Ok(n) if n < RECORD_HEADER => {
                out.problem = Some(DecodeProblem::TornTail { offset: at });
                break;
            }
            Ok(_) => {}
            Err(e) => return read_failed(out, at, &e),
        }
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        if len > MAX_RECORD_BYTES {
            out.problem = Some(DecodeProblem::Corrupt {
                offset: at,
                why: format!("record length {len} exceeds {MAX_RECORD_BYTES}"),
            });
            break;
        }
        // Grown as bytes arrive, so a damaged length on a short file reserves nothing.
        payload.clear();
        match (&mut input).take(u64::from(len)).read_to_end(&mut payload) {
            Ok(n) if n < len as usize => {
                out.problem = Some(DecodeProblem::TornTail { offset: at });
                break;
            }
            Ok(_) => {}
            Err(e) => return read_failed(out, at, &e),
        }
        if crc32(&payload) != crc {
            // A bad checksum on the very last record is a torn write, not damage.
            let last = input.fill_buf().is_ok_and(|rest| rest.is_empty());
            out.problem = Some(if last {
                DecodeProblem::TornTail { offset: at }
            } else {
                DecodeProblem::Corrupt {
                    offset: at,
                    why: "checksum mismatch".into(),
                }
            });
            break;
        }
        match decode_payload(&payload, &mut names) {
            Ok(Some(r)) => out.records.push(r),
            Ok(None) => {}
            Err(why) => {
                out.problem = Some(DecodeProblem::Corrupt { offset: at, why });
                break;
            }
        }
        at += RECORD_HEADER + payload.len();
    }
    out
}

/// Reads until `buf` is full or the input ends; how many bytes it got.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn read_failed(mut out: Decoded, offset: usize, e: &io::Error) -> Decoded {
    out.problem = Some(DecodeProblem::Corrupt {
        offset,
        why: format!("reading it failed: {e}"),
    });
    out
}

/// One record's payload: JSON (first byte `{`) or binary (a kind byte); `None` for a kind this
/// agent does not know (a newer writer's), which is skipped.
fn decode_payload(payload: &[u8], names: &mut codec::Names) -> Result<Option<Record>, String> {
    let binary =
        |kind: &str, m: codec::Malformed| format!("binary {kind} record is malformed: {}", m.0);
    match payload.split_first() {
        Some((b'{', _)) => match serde_json::from_slice::<Record>(payload) {
            Ok(r) => Ok(Some(r)),
            Err(_) if payload.starts_with(b"{\"k\":") => Ok(None),
            Err(e) => Err(format!("record is not valid JSON: {e}")),
        },
        Some((&codec::KIND_SAMPLE, rest)) => {
            let mut r = codec::Reader::with_names(rest, std::mem::take(names));
            let decoded = codec::decode_sample(&mut r);
            *names = r.into_names();
            decoded
                .map(|(t, gpus, xids)| Some(Record::Sample { t, gpus, xids }))
                .map_err(|m| binary("sample", m))
        }
        Some((&codec::KIND_MINUTE, rest)) => {
            let mut r = codec::Reader::with_names(rest, std::mem::take(names));
            let decoded = codec::decode_minute(&mut r);
            *names = r.into_names();
            decoded
                .map(|m| Some(Record::Minute(m)))
                .map_err(|m| binary("minute", m))
        }
        Some(_) => Ok(None),
        None => Err("empty record".into()),
    }
}

/// CRC-32 (IEEE 802.3, as zlib and `crc32` compute it); `crc32fast` uses the CPU's carry-less
/// multiply where it has one, which took the check of a day's history from most of the read to ~1%.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// An open segment being appended to.
struct OpenSegment {
    file: File,
    path: PathBuf,
    started_ms: i64,
    len: u64,
}

/// Appends records to the history: rotates segments, applies retention, keeps within the byte budget
/// (dropping the oldest segments first) and survives a full volume the same way.
pub struct HistoryWriter {
    opts: StoreOptions,
    writer_started_ms: i64,
    open: [Option<OpenSegment>; 2],
    /// Bytes of every segment in the directory (ours and older ones).
    total_bytes: u64,
    /// What went wrong lately, for the log (drained by the caller).
    pub notes: Vec<String>,
    /// Crash-test hook: stop the process halfway through this raw-tier record (1 = the first).
    stop_mid_record: Option<u64>,
    raw_records: u64,
}

impl HistoryWriter {
    /// Opens the history directory (creating it), applying retention to what an earlier process left.
    pub fn open(opts: StoreOptions, now_ms: i64) -> io::Result<HistoryWriter> {
        std::fs::create_dir_all(&opts.dir)?;
        let mut w = HistoryWriter {
            opts,
            writer_started_ms: now_ms,
            open: [None, None],
            total_bytes: 0,
            notes: Vec::new(),
            stop_mid_record: None,
            raw_records: 0,
        };
        w.prune(now_ms)?;
        Ok(w)
    }

    /// Appends one record to `tier`.
    pub fn append(&mut self, tier: Tier, record: &Record, now_ms: i64) -> io::Result<()> {
        let bytes = encode(record);
        let slot = tier as usize;
        let rotate = match &self.open[slot] {
            None => true,
            Some(seg) => now_ms - seg.started_ms >= self.opts.segment_span_ms(tier),
        };
        if rotate {
            self.open[slot] = None;
            self.prune(now_ms)?;
            self.open_segment(tier, now_ms)?;
        }
        self.make_room(tier, bytes.len() as u64, now_ms)?;
        match self.write_bytes(slot, &bytes) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                self.notes.push(format!(
                    "history volume {} is full: dropping the oldest segment",
                    self.opts.dir.display()
                ));
                if self.drop_oldest()? {
                    self.write_bytes(slot, &bytes)
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    fn open_segment(&mut self, tier: Tier, now_ms: i64) -> io::Result<()> {
        let mut started = now_ms;
        let path = loop {
            let p = self
                .opts
                .dir
                .join(format!("{}{started:013}.seg", tier.prefix()));
            if !p.exists() {
                break p;
            }
            started += 1;
        };
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut seg = OpenSegment {
            file,
            path,
            started_ms: started,
            len: 0,
        };
        let header = Record::Header(SegmentHeader {
            format: FORMAT.into(),
            version: VERSION,
            tier: tier.name().into(),
            started_ms: started,
            writer_started_ms: self.writer_started_ms,
            interval_ms: self.opts.interval.as_millis() as u64,
            writer: format!("agent {}", env!("CARGO_PKG_VERSION")),
        });
        let mut first = MAGIC.to_vec();
        first.extend(encode(&header));
        seg.file.write_all(&first)?;
        seg.len = first.len() as u64;
        self.total_bytes += seg.len;
        self.open[tier as usize] = Some(seg);
        Ok(())
    }

    /// Crash tests: write only the first half of the `n`th raw-tier record (1 = the first), then stop
    /// the process with `SIGSTOP`, so a test can `SIGKILL` it exactly between the two halves.
    pub fn stop_mid_record(&mut self, n: u64) {
        self.stop_mid_record = Some(n);
    }

    /// Writes with one `write` call; a partial write is cut back so no torn record stays mid-file.
    fn write_bytes(&mut self, slot: usize, bytes: &[u8]) -> io::Result<()> {
        let Some(seg) = self.open[slot].as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        if slot == Tier::Raw as usize {
            self.raw_records += 1;
            if self.stop_mid_record == Some(self.raw_records) {
                seg.file.write_all(&bytes[..bytes.len() / 2])?;
                // SAFETY: raise has no preconditions; the process stops here until killed.
                unsafe { libc::raise(libc::SIGSTOP) };
            }
        }
        match seg.file.write_all(bytes) {
            Ok(()) => {
                seg.len += bytes.len() as u64;
                self.total_bytes += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = seg.file.set_len(seg.len);
                Err(e)
            }
        }
    }

    /// Drops the oldest segments until `incoming` more bytes fit the budget; when only open segments
    /// are left, the open segment of `tier` is closed (a new one opened) so it can go too.
    fn make_room(&mut self, tier: Tier, incoming: u64, now_ms: i64) -> io::Result<()> {
        let mut rotated = false;
        while self.total_bytes + incoming > self.opts.max_bytes {
            if self.drop_oldest()? {
                continue;
            }
            if rotated {
                break;
            }
            self.open[tier as usize] = None;
            self.open_segment(tier, now_ms)?;
            rotated = true;
        }
        Ok(())
    }

    /// Deletes the oldest closed segment of either tier; false when only open segments remain.
    fn drop_oldest(&mut self) -> io::Result<bool> {
        let (segments, _) = list_segments(&self.opts.dir)?;
        let open: Vec<&Path> = self
            .open
            .iter()
            .flatten()
            .map(|s| s.path.as_path())
            .collect();
        let oldest = segments
            .iter()
            .filter(|s| !open.contains(&s.path.as_path()))
            .min_by_key(|s| s.started_ms);
        let Some(oldest) = oldest else {
            return Ok(false);
        };
        remove(&oldest.path)?;
        self.total_bytes = self.total_bytes.saturating_sub(oldest.bytes);
        self.notes.push(format!(
            "dropped history segment {} to stay within {} bytes",
            oldest.path.display(),
            self.opts.max_bytes
        ));
        Ok(true)
    }

    /// Deletes segments wholly older than their tier's retention, and recounts the bytes in use.
    fn prune(&mut self, now_ms: i64) -> io::Result<()> {
        let (segments, _) = list_segments(&self.opts.dir)?;
        let mut total = 0;
        for tier in [Tier::Raw, Tier::Minute] {
            let cutoff = now_ms - self.opts.retention(tier).as_millis() as i64;
            let of_tier: Vec<&SegmentFile> = segments.iter().filter(|s| s.tier == tier).collect();
            for (i, seg) in of_tier.iter().enumerate() {
                // Every record of a segment is older than the next segment's start.
                let expired = of_tier
                    .get(i + 1)
                    .is_some_and(|next| next.started_ms <= cutoff);
                if expired {
                    remove(&seg.path)?;
                } else {
                    total += seg.bytes;
                }
            }
        }
        self.total_bytes = total + self.open.iter().flatten().map(|s| s.len).sum::<u64>();
        Ok(())
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Everything read back from the history directory for a time range.
#[derive(Debug, Default)]
pub struct HistoryRead {
    /// Raw-tier records (headers, samples, skips), oldest first.
    pub raw: Vec<Record>,
    /// Minute aggregates, oldest first.
    pub minutes: Vec<MinuteAggregate>,
    /// Segment headers of both tiers, oldest first.
    pub headers: Vec<SegmentHeader>,
    /// Files skipped or read only in part, and why.
    pub notes: Vec<String>,
}

/// Reads the records of `dir` from `from_ms` on (records before it are kept only as the last one
/// before the window, as a baseline for counter deltas). Never fails on bad files: they are noted.
pub fn read_history(dir: &Path, from_ms: i64) -> io::Result<HistoryRead> {
    let (segments, foreign) = list_segments(dir)?;
    let mut out = HistoryRead::default();
    for path in foreign {
        out.notes.push(format!(
            "skipped {}: not a history segment (raw-<ms>.seg or min-<ms>.seg)",
            path.display()
        ));
    }
    for tier in [Tier::Raw, Tier::Minute] {
        let of_tier: Vec<&SegmentFile> = segments.iter().filter(|s| s.tier == tier).collect();
        for (i, seg) in of_tier.iter().enumerate() {
            let newest = i + 1 == of_tier.len();
            if of_tier
                .get(i + 1)
                .is_some_and(|next| next.started_ms < from_ms - 120_000)
            {
                continue;
            }
            let file = match File::open(&seg.path) {
                Ok(f) => f,
                // Deleted by retention between listing and reading.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    out.notes
                        .push(format!("skipped {}: {e}", seg.path.display()));
                    continue;
                }
            };
            let decoded = decode_from(io::BufReader::with_capacity(READ_BUFFER, file));
            match decoded.problem {
                None => {}
                Some(DecodeProblem::Foreign) => out.notes.push(format!(
                    "skipped {}: it does not start with the history format's magic bytes",
                    seg.path.display()
                )),
                Some(DecodeProblem::TornTail { .. }) if newest => {}
                Some(DecodeProblem::TornTail { offset }) => out.notes.push(format!(
                    "{}: incomplete last record at byte {offset} (the agent was killed while \
                     writing it); the records before it were read",
                    seg.path.display()
                )),
                Some(DecodeProblem::Corrupt { offset, why }) => out.notes.push(format!(
                    "{}: corrupt record at byte {offset} ({why}); the rest of this file was skipped",
                    seg.path.display()
                )),
            }
            for r in decoded.records {
                match r {
                    Record::Header(h) => {
                        if !READABLE_VERSIONS.contains(&h.version) || h.format != FORMAT {
                            out.notes.push(format!(
                                "skipped {}: format {} version {} (this agent reads versions {READABLE_VERSIONS:?})",
                                seg.path.display(),
                                h.format,
                                h.version
                            ));
                            break;
                        }
                        out.headers.push(h.clone());
                        if tier == Tier::Raw {
                            out.raw.push(Record::Header(h));
                        }
                    }
                    Record::Minute(m) => out.minutes.push(m),
                    other => out.raw.push(other),
                }
            }
        }
    }
    out.raw.sort_by_key(Record::time_ms);
    out.minutes.sort_by_key(|m| m.t);
    out.headers.sort_by_key(|h| h.started_ms);
    Ok(out)
}
