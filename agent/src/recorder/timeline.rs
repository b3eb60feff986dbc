//! `get_gpu_timeline`'s result, built from the history (pure): per GPU and metric a min/max/mean/last
//! summary per time bucket, and the ordered events — thresholds crossed, throttle reasons starting
//! and ending, counter increments and resets, link changes, Xids, GPUs lost and returned, recorder
//! gaps. Raw samples are used where they exist; older stretches come from the minute aggregates
//! (their events are marked `approximate`: known to the minute).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::aggregate::{MinuteAggregate, Summary};
use super::sample::{CounterId, CounterMap, Gauge, GaugeMap, GpuState, XidSample};
use super::store::{HistoryRead, Record};
use crate::gpu::ClockEventReason;
use crate::xid::time::format_rfc3339;

/// What happened, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The temperature reached the GPU's slowdown threshold.
    TemperatureAboveSlowdown,
    /// The temperature fell below the slowdown threshold again.
    TemperatureBelowSlowdown,
    ThrottleStart,
    ThrottleEnd,
    CounterIncrement,
    /// A counter went down: the driver reloaded or the GPU was reset.
    CounterReset,
    PcieLinkChange,
    NvlinkDown,
    NvlinkUp,
    RemapPending,
    Xid,
    GpuLost,
    GpuReturned,
    /// The agent started (again) after a stretch without samples.
    AgentRestarted,
    /// No samples for longer than expected while the agent ran.
    RecorderGap,
    /// A tick without a sample (hung or failing NVML).
    SamplingSkipped,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TimelineEvent {
    /// When (RFC 3339, UTC).
    pub time: String,
    #[serde(skip)]
    pub unix_ms: i64,
    /// The GPU (NVML index); absent for node-wide events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    pub kind: EventKind,
    /// The metric, counter or reason concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The value before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// The value after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
    pub detail: String,
    /// True when the event comes from one-minute aggregates: its time is the minute's start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// One metric's buckets: `[min, max, mean, last]` per bucket, `[]` for a bucket without samples.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct MetricSeries {
    pub name: String,
    pub buckets: Vec<Vec<f64>>,
}

/// One GPU's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GpuTimeline {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Samples (raw, or counted inside minute aggregates) in the window.
    pub samples: u64,
    pub metrics: Vec<MetricSeries>,
    /// Oldest first.
    pub events: Vec<TimelineEvent>,
}

/// What the history covers.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Coverage {
    /// The oldest record kept (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<String>,
    /// The newest record kept (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// Every sample is kept from this time on; before it only one-minute aggregates (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_resolution_from: Option<String>,
    pub sample_interval_seconds: f64,
}

/// The tool's result body.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TimelineReport {
    /// False when this agent has no flight recorder (history disabled or never written): see `notes`.
    pub recorder_available: bool,
    /// Start of the window (RFC 3339).
    pub from: String,
    /// End of the window (RFC 3339).
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Width of each summary bucket.
    pub bucket_seconds: u64,
    /// Start of each bucket (RFC 3339), shared by every metric's `buckets`.
    pub bucket_starts: Vec<String>,
    pub gpus: Vec<GpuTimeline>,
    /// Node-wide events (agent restarts, recorder gaps, skipped samples, Xids of unknown GPUs).
    pub node_events: Vec<TimelineEvent>,
    /// Events in the window before any was left out.
    pub events_total: u64,
    /// True when events or bucket detail were left out to keep the answer small.
    pub truncated: bool,
    /// How to ask for the rest, when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrow: Option<String>,
    pub notes: Vec<String>,
}

/// Which GPUs to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuSelector {
    Index(u32),
    Uuid(String),
}

/// A timeline request.
#[derive(Clone, Debug)]
pub struct TimelineQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub gpu: Option<GpuSelector>,
    pub max_events: usize,
    pub max_bytes: usize,
}

/// Buckets tried, most detailed first, until the answer fits.
const BUCKET_COUNTS: [i64; 4] = [12, 6, 3, 1];

/// The report for `query` from what was read (pure).
pub fn build(read: &HistoryRead, query: &TimelineQuery) -> TimelineReport {
    let events = events_per_gpu(read, query);
    let mut report = build_with(read, &events, query, BUCKET_COUNTS[0]);
    for n in BUCKET_COUNTS.into_iter().skip(1) {
        if size(&report) <= query.max_bytes {
            break;
        }
        report = build_with(read, &events, query, n);
        report.truncated = true;
    }
    trim_events(&mut report, query);
    report
}

/// A selected GPU's events in the window, with its newest UUID (the same at every bucket size).
struct GpuEvents<'a> {
    index: u32,
    uuid: Option<&'a str>,
    events: Vec<TimelineEvent>,
}

fn events_per_gpu<'a>(read: &'a HistoryRead, q: &TimelineQuery) -> Vec<GpuEvents<'a>> {
    let mut tracks: BTreeMap<u32, Track> = BTreeMap::new();
    for (index, obs) in observations(read) {
        tracks
            .entry(index)
            .or_default()
            .step(index, obs, q.from_ms, q.to_ms);
    }
    tracks
        .into_iter()
        .filter(|(index, t)| selected(&q.gpu, *index, t.uuid))
        .map(|(index, t)| GpuEvents {
            index,
            uuid: t.uuid,
            events: t.events,
        })
        .collect()
}

fn size(r: &TimelineReport) -> usize {
    serde_json::to_vec(r).map_or(usize::MAX, |v| v.len())
}

/// One GPU's state at one time, from a raw sample or a minute aggregate (borrowed from the read).
#[derive(Clone, Debug)]
struct Obs<'a> {
    t: i64,
    approximate: bool,
    lost: bool,
    uuid: Option<&'a str>,
    temperature: Option<f64>,
    counters: &'a CounterMap,
    state: &'a GpuState,
}

/// Every GPU's states, oldest first: minute aggregates up to the first raw sample, then raw samples.
fn observations(read: &HistoryRead) -> impl Iterator<Item = (u32, Obs<'_>)> {
    let first_raw = first_raw_sample(read);
    let minutes = minutes_before(read, first_raw).flat_map(|m| {
        m.gpus.iter().map(move |g| {
            let obs = Obs {
                t: m.t,
                approximate: true,
                lost: g.lost_samples > 0 && g.gauges.is_empty(),
                uuid: g.uuid.as_deref(),
                temperature: g.gauges.get(Gauge::TemperatureC).map(|s| s[1]),
                counters: &g.counters,
                state: &g.state,
            };
            (g.index, obs)
        })
    });
    let samples = read.raw.iter().flat_map(|r| {
        let (t, gpus) = match r {
            Record::Sample { t, gpus, .. } => (*t, &gpus[..]),
            _ => (0, &[][..]),
        };
        gpus.iter().map(move |s| {
            let obs = Obs {
                t,
                approximate: false,
                lost: s.lost.is_some(),
                uuid: s.uuid.as_deref(),
                temperature: s.gauges.get(Gauge::TemperatureC).copied(),
                counters: &s.counters,
                state: &s.state,
            };
            (s.index, obs)
        })
    });
    minutes.chain(samples)
}

fn first_raw_sample(read: &HistoryRead) -> Option<i64> {
    read.raw.iter().find_map(|r| match r {
        Record::Sample { t, .. } => Some(*t),
        _ => None,
    })
}

/// Minute aggregates that end before the first raw sample (the raw tier covers the rest).
fn minutes_before(
    read: &HistoryRead,
    first_raw: Option<i64>,
) -> impl Iterator<Item = &MinuteAggregate> {
    read.minutes
        .iter()
        .filter(move |m| first_raw.is_none_or(|f| m.t + 60_000 <= f))
}

fn event(t: i64, gpu: Option<u32>, kind: EventKind, detail: String) -> TimelineEvent {
    TimelineEvent {
        time: format_rfc3339(t * 1000),
        unix_ms: t,
        gpu,
        kind,
        metric: None,
        from: None,
        to: None,
        detail,
        approximate: false,
    }
}

/// One GPU followed through its states: the last state it answered in, and its events so far.
#[derive(Default)]
struct Track<'a> {
    last_ok: Option<Obs<'a>>,
    was_lost: bool,
    uuid: Option<&'a str>,
    events: Vec<TimelineEvent>,
}

impl<'a> Track<'a> {
    /// The events between the previous state and `cur` (those inside the window are kept).
    fn step(&mut self, gpu: u32, cur: Obs<'a>, from_ms: i64, to_ms: i64) {
        if cur.uuid.is_some() {
            self.uuid = cur.uuid;
        }
        let in_window = (from_ms..=to_ms).contains(&cur.t);
        let events = &mut self.events;
        let mut push = |mut e: TimelineEvent| {
            if in_window {
                e.approximate = cur.approximate;
                events.push(e);
            }
        };
        if cur.lost != self.was_lost {
            let (kind, detail) = if cur.lost {
                (
                    EventKind::GpuLost,
                    "GPU stopped answering NVML (lost or reset required)",
                )
            } else {
                (EventKind::GpuReturned, "GPU answers NVML again")
            };
            push(event(cur.t, Some(gpu), kind, detail.into()));
            self.was_lost = cur.lost;
        }
        if cur.lost {
            return;
        }
        if let Some(prev) = &self.last_ok {
            for e in diff(gpu, prev, &cur) {
                push(e);
            }
        }
        self.last_ok = Some(cur);
    }
}

fn diff(gpu: u32, prev: &Obs, cur: &Obs) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    let t = cur.t;
    let with = |kind, metric: &str, from: Option<f64>, to: Option<f64>, detail: String| {
        let mut e = event(t, Some(gpu), kind, detail);
        e.metric = Some(metric.to_string());
        e.from = from;
        e.to = to;
        e
    };
    if let (Some(a), Some(b), Some(limit)) =
        (prev.temperature, cur.temperature, cur.state.slowdown_c)
    {
        let limit_f = f64::from(limit);
        if a < limit_f && b >= limit_f {
            out.push(with(
                EventKind::TemperatureAboveSlowdown,
                "temperature_c",
                Some(a),
                Some(b),
                format!("temperature {b} °C reached the slowdown threshold {limit} °C"),
            ));
        } else if a >= limit_f && b < limit_f {
            out.push(with(
                EventKind::TemperatureBelowSlowdown,
                "temperature_c",
                Some(a),
                Some(b),
                format!("temperature {b} °C is below the slowdown threshold {limit} °C again"),
            ));
        }
    }
    if let (Some(a), Some(b)) = (prev.state.reasons, cur.state.reasons)
        && a != b
    {
        for r in ClockEventReason::ALL {
            let (was, is) = (a & r.bit() != 0, b & r.bit() != 0);
            if r == ClockEventReason::GpuIdle || was == is {
                continue;
            }
            let name = serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match (was, is) {
                (false, true) => out.push(with(
                    EventKind::ThrottleStart,
                    &name,
                    None,
                    None,
                    format!("clock event reason {name} started"),
                )),
                (true, false) => out.push(with(
                    EventKind::ThrottleEnd,
                    &name,
                    None,
                    None,
                    format!("clock event reason {name} ended"),
                )),
                _ => {}
            }
        }
    }
    let counters = if prev.counters == cur.counters {
        &[][..]
    } else {
        &CounterId::ALL[..]
    };
    for &c in counters {
        let (Some(&a), Some(&b)) = (prev.counters.get(c), cur.counters.get(c)) else {
            continue;
        };
        if b > a && c.increments_are_events() {
            out.push(with(
                EventKind::CounterIncrement,
                c.name(),
                Some(a as f64),
                Some(b as f64),
                format!("{} +{} ({a} → {b})", c.name(), b - a),
            ));
        } else if b < a {
            out.push(with(
                EventKind::CounterReset,
                c.name(),
                Some(a as f64),
                Some(b as f64),
                format!(
                    "{} went down {a} → {b}: the driver reloaded or the GPU was reset",
                    c.name()
                ),
            ));
        }
    }
    let (pg, pw) = (prev.state.pcie_gen, prev.state.pcie_width);
    let (cg, cw) = (cur.state.pcie_gen, cur.state.pcie_width);
    if pg.is_some() && cg.is_some() && pg != cg {
        out.push(with(
            EventKind::PcieLinkChange,
            "pcie_gen_current",
            pg.map(f64::from),
            cg.map(f64::from),
            format!(
                "PCIe link generation {} → {}",
                pg.unwrap_or(0),
                cg.unwrap_or(0)
            ),
        ));
    }
    if pw.is_some() && cw.is_some() && pw != cw {
        out.push(with(
            EventKind::PcieLinkChange,
            "pcie_width_current",
            pw.map(f64::from),
            cw.map(f64::from),
            format!(
                "PCIe link width x{} → x{}",
                pw.unwrap_or(0),
                cw.unwrap_or(0)
            ),
        ));
    }
    let down: Vec<u32> = cur
        .state
        .nvlinks_down
        .iter()
        .filter(|l| !prev.state.nvlinks_down.contains(l))
        .copied()
        .collect();
    let up: Vec<u32> = prev
        .state
        .nvlinks_down
        .iter()
        .filter(|l| !cur.state.nvlinks_down.contains(l))
        .copied()
        .collect();
    if !down.is_empty() {
        out.push(event(
            t,
            Some(gpu),
            EventKind::NvlinkDown,
            format!("NVLink(s) {down:?} became inactive"),
        ));
    }
    if !up.is_empty() {
        out.push(event(
            t,
            Some(gpu),
            EventKind::NvlinkUp,
            format!("NVLink(s) {up:?} active again"),
        ));
    }
    if prev.state.remap_pending == Some(false) && cur.state.remap_pending == Some(true) {
        out.push(event(
            t,
            Some(gpu),
            EventKind::RemapPending,
            "a row remap is pending: it applies at the next GPU reset".into(),
        ));
    }
    out
}

fn xid_event(x: &XidSample, approximate: bool) -> TimelineEvent {
    let explanation = crate::xid::explain(x.code);
    let mut e = event(
        x.unix_ms,
        x.gpu,
        EventKind::Xid,
        format!(
            "Xid {} ({}) on PCI {}: {}",
            x.code, explanation.mnemonic, x.pci, x.message
        ),
    );
    e.metric = Some(format!("xid_{}", x.code));
    e.approximate = approximate;
    e
}

/// Node-wide events: restarts, gaps, skipped ticks (pure).
fn node_events(read: &HistoryRead, from_ms: i64, to_ms: i64) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    let interval = read
        .headers
        .last()
        .map_or(10_000, |h| h.interval_ms as i64)
        .max(1);
    let slack = (interval * 3).max(interval + 2_000);
    let mut last_tick: Option<i64> = None;
    let mut restarted_at: Option<i64> = None;
    let first_raw = first_raw_sample(read);
    let mut last_minute: Option<i64> = None;
    for m in minutes_before(read, first_raw) {
        if let Some(prev) = last_minute
            && m.t - prev > 120_000
            && (from_ms..=to_ms).contains(&m.t)
        {
            let mut e = event(
                prev + 60_000,
                None,
                EventKind::RecorderGap,
                format!(
                    "no samples from {} to {}",
                    format_rfc3339((prev + 60_000) * 1000),
                    format_rfc3339(m.t * 1000)
                ),
            );
            e.approximate = true;
            out.push(e);
        }
        if m.skipped > 0 && (from_ms..=to_ms).contains(&m.t) {
            let mut e = event(
                m.t,
                None,
                EventKind::SamplingSkipped,
                format!("{} sample(s) skipped in this minute", m.skipped),
            );
            e.approximate = true;
            out.push(e);
        }
        last_minute = Some(m.t);
        last_tick = Some(m.t + 60_000);
    }
    for r in &read.raw {
        let in_window = |t: i64| (from_ms..=to_ms).contains(&t);
        match r {
            Record::Header(h) => {
                if last_tick.is_some_and(|l| h.writer_started_ms > l) {
                    restarted_at = Some(h.writer_started_ms);
                }
            }
            Record::Sample { t, .. } | Record::Skipped { t, .. } => {
                if let Some(prev) = last_tick
                    && in_window(*t)
                {
                    let span = format!(
                        "no samples from {} to {}",
                        format_rfc3339(prev * 1000),
                        format_rfc3339(t * 1000)
                    );
                    if let Some(at) = restarted_at.take() {
                        out.push(event(
                            at,
                            None,
                            EventKind::AgentRestarted,
                            format!("the agent started again; {span}"),
                        ));
                    } else if t - prev > slack {
                        out.push(event(prev + interval, None, EventKind::RecorderGap, span));
                    }
                }
                restarted_at = None;
                if let Record::Skipped { t, reason } = r
                    && in_window(*t)
                {
                    out.push(event(*t, None, EventKind::SamplingSkipped, reason.clone()));
                }
                last_tick = Some(*t);
            }
            Record::Minute(_) => {}
        }
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Acc {
    min: f64,
    max: f64,
    sum: f64,
    n: f64,
    last: f64,
    last_t: i64,
}

impl Acc {
    fn push(&mut self, s: Summary, n: f64, t: i64) {
        if self.n == 0.0 {
            self.min = s[0];
            self.max = s[1];
        }
        self.min = self.min.min(s[0]);
        self.max = self.max.max(s[1]);
        self.sum += s[2] * n;
        self.n += n;
        if t >= self.last_t {
            self.last = s[3];
            self.last_t = t;
        }
    }

    fn summary(&self) -> Vec<f64> {
        if self.n == 0.0 {
            return Vec::new();
        }
        [self.min, self.max, self.sum / self.n, self.last]
            .into_iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect()
    }
}

fn selected(sel: &Option<GpuSelector>, index: u32, uuid: Option<&str>) -> bool {
    match sel {
        None => true,
        Some(GpuSelector::Index(i)) => *i == index,
        Some(GpuSelector::Uuid(u)) => uuid.is_some_and(|x| x.eq_ignore_ascii_case(u)),
    }
}

/// Gauge summaries per GPU per bucket, folded from minutes and samples.
struct Buckets<'q> {
    q: &'q TimelineQuery,
    count: i64,
    bucket_ms: i64,
    gpus: BTreeMap<u32, (GpuTimeline, GaugeMap<Vec<Acc>>)>,
}

impl Buckets<'_> {
    fn gpu(&mut self, index: u32) -> &mut (GpuTimeline, GaugeMap<Vec<Acc>>) {
        self.gpus.entry(index).or_insert_with(|| {
            let g = GpuTimeline {
                index,
                uuid: None,
                samples: 0,
                metrics: Vec::new(),
                events: Vec::new(),
            };
            (g, GaugeMap::default())
        })
    }

    fn fold(
        &mut self,
        (index, uuid): (u32, Option<&str>),
        t: i64,
        n: f64,
        gauges: impl Iterator<Item = (Gauge, Summary)>,
    ) {
        let q = self.q;
        if !(q.from_ms..=q.to_ms).contains(&t) || !selected(&q.gpu, index, uuid) {
            return;
        }
        let (count, b) = (
            self.count,
            ((t - q.from_ms) / self.bucket_ms).min(self.count - 1),
        );
        let (g, accs) = self.gpu(index);
        if let Some(u) = uuid
            && g.uuid.as_deref() != Some(u)
        {
            g.uuid = Some(u.to_owned());
        }
        g.samples += n as u64;
        for (gauge, s) in gauges {
            let acc = accs.entry(gauge);
            if acc.is_empty() {
                acc.resize(count as usize, Acc::default());
            }
            acc[b as usize].push(s, n, t);
        }
    }
}

fn build_with(
    read: &HistoryRead,
    events: &[GpuEvents],
    q: &TimelineQuery,
    buckets: i64,
) -> TimelineReport {
    let span = (q.to_ms - q.from_ms).max(1);
    let bucket_ms = ((span + buckets - 1) / buckets).max(1);
    let mut folded = Buckets {
        q,
        count: buckets,
        bucket_ms,
        gpus: BTreeMap::new(),
    };
    let first_raw = first_raw_sample(read);
    for m in minutes_before(read, first_raw) {
        for g in &m.gpus {
            let n = f64::from(m.n.saturating_sub(g.lost_samples).max(1));
            let gauges = g.gauges.iter().map(|(k, v)| (k, *v));
            folded.fold((g.index, g.uuid.as_deref()), m.t, n, gauges);
        }
    }
    for r in &read.raw {
        if let Record::Sample {
            t, gpus: samples, ..
        } = r
        {
            for s in samples {
                let gauges = s.gauges.iter().map(|(k, v)| (k, [*v, *v, *v, *v]));
                folded.fold((s.index, s.uuid.as_deref()), *t, 1.0, gauges);
            }
        }
    }
    // GPUs seen only through events (lost the whole window) still get an entry.
    for e in events {
        if e.events.is_empty() && !folded.gpus.contains_key(&e.index) {
            continue;
        }
        let (g, _) = folded.gpu(e.index);
        if g.uuid.is_none() {
            g.uuid = e.uuid.map(str::to_owned);
        }
        g.events.clone_from(&e.events);
    }
    let mut gpus = folded.gpus;
    let mut node_events = node_events(read, q.from_ms, q.to_ms);
    let mut seen_xids = std::collections::BTreeSet::new();
    let xids = minutes_before(read, first_raw)
        .flat_map(|m| m.xids.iter().map(|x| (x, true)))
        .chain(read.raw.iter().flat_map(|r| match r {
            Record::Sample { xids, .. } => xids.iter().map(|x| (x, false)).collect::<Vec<_>>(),
            _ => Vec::new(),
        }));
    for (x, approx) in xids {
        if !(q.from_ms..=q.to_ms).contains(&x.unix_ms)
            || !seen_xids.insert((x.unix_ms, x.code, x.pci.clone()))
        {
            continue;
        }
        let e = xid_event(x, approx);
        match x.gpu.and_then(|i| gpus.get_mut(&i)) {
            Some((g, _)) => g.events.push(e),
            None if q.gpu.is_none() || x.gpu.is_some_and(|i| selected(&q.gpu, i, None)) => {
                node_events.push(e)
            }
            None => {}
        }
    }
    let mut out_gpus = Vec::new();
    let mut events_total = node_events.len() as u64;
    for (_, (mut g, accs)) in gpus {
        g.metrics = Gauge::ALL
            .iter()
            .filter_map(|gauge| {
                accs.get(*gauge).map(|a| MetricSeries {
                    name: gauge.name().into(),
                    buckets: a.iter().map(Acc::summary).collect(),
                })
            })
            .collect();
        g.events.sort_by_key(|e| (e.unix_ms, e.kind));
        events_total += g.events.len() as u64;
        out_gpus.push(g);
    }
    node_events.sort_by_key(|e| (e.unix_ms, e.kind));
    let coverage = coverage(read);
    TimelineReport {
        recorder_available: true,
        from: format_rfc3339(q.from_ms * 1000),
        to: format_rfc3339(q.to_ms * 1000),
        coverage,
        bucket_seconds: (bucket_ms / 1000).max(1) as u64,
        bucket_starts: (0..buckets)
            .map(|i| format_rfc3339((q.from_ms + i * bucket_ms) * 1000))
            .collect(),
        gpus: out_gpus,
        node_events,
        events_total,
        truncated: false,
        narrow: None,
        notes: read.notes.clone(),
    }
}

fn coverage(read: &HistoryRead) -> Option<Coverage> {
    let oldest = read
        .minutes
        .first()
        .map(|m| m.t)
        .into_iter()
        .chain(first_raw_sample(read))
        .min()?;
    let newest = read
        .raw
        .last()
        .map(Record::time_ms)
        .into_iter()
        .chain(read.minutes.last().map(|m| m.t + 60_000))
        .max()?;
    Some(Coverage {
        oldest: Some(format_rfc3339(oldest * 1000)),
        newest: Some(format_rfc3339(newest * 1000)),
        full_resolution_from: first_raw_sample(read).map(|t| format_rfc3339(t * 1000)),
        sample_interval_seconds: read
            .headers
            .last()
            .map_or(0.0, |h| h.interval_ms as f64 / 1000.0),
    })
}

/// Keeps the newest `max_events` events (and fewer while the answer exceeds `max_bytes`).
fn trim_events(r: &mut TimelineReport, q: &TimelineQuery) {
    let mut keep = q.max_events.min(r.events_total as usize);
    loop {
        let total: usize =
            r.node_events.len() + r.gpus.iter().map(|g| g.events.len()).sum::<usize>();
        if total > keep {
            let mut times: Vec<i64> = r
                .node_events
                .iter()
                .chain(r.gpus.iter().flat_map(|g| g.events.iter()))
                .map(|e| e.unix_ms)
                .collect();
            times.sort_unstable();
            // Keep the newest `keep` (ties at the cut stay together).
            let cutoff = times.get(total - keep).copied().unwrap_or(i64::MAX);
            r.node_events.retain(|e| e.unix_ms >= cutoff);
            for g in &mut r.gpus {
                g.events.retain(|e| e.unix_ms >= cutoff);
            }
            r.truncated = true;
        }
        if size(r) <= q.max_bytes || keep == 0 {
            break;
        }
        keep /= 2;
        r.truncated = true;
    }
    if r.truncated {
        r.narrow = Some(format!(
            "The answer was cut to stay under {} bytes: the newest events are kept and buckets may be \
             coarser. Ask for one GPU (`gpu`), a shorter window (`since_seconds`) or more events \
             (`max_events`) to see the rest.",
            q.max_bytes
        ));
    }
}
