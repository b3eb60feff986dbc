//! The flight recorder over a scripted day (test clock, mock backend): every event once, in order, at
//! its time; aggregates that match the samples; retention; a reader during writes; a writer killed
//! mid-record; corrupt and foreign files; a full volume; an NVML call that hangs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent::clock::{ManualClock, WallClock};
use agent::gpu::mock::MockBackend;
use agent::gpu::{BackendError, DataSource, DeviceIdentity, GpuBackend, GpuFilter, NodeSnapshot};
use agent::recorder::sample::Gauge;
use agent::recorder::store::{self, Record, StoreOptions, Tier};
use agent::recorder::timeline::{EventKind, TimelineQuery, TimelineReport};
use agent::recorder::{Recorder, Tick, read_timeline};
use agent::xid::{LogSource, ReadLimits, read_kernel_log};
use gpu_fixture::Fixture;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

fn fixture() -> Fixture {
    Fixture::from_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/h100-incident-day.yaml"),
    )
    .unwrap()
}

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        dir: dir.to_path_buf(),
        raw_retention: Duration::from_secs(3600),
        minute_retention: Duration::from_secs(86_400),
        max_bytes: 64 * 1024 * 1024,
        interval: Duration::from_secs(10),
    }
}

struct Day {
    clock: Arc<ManualClock>,
    mock: MockBackend,
}

impl Day {
    fn new() -> Day {
        let clock = ManualClock::at(T0);
        let mock = MockBackend::with_clock(
            fixture(),
            DataSource::MockFixture("day".into()),
            clock.clone(),
        );
        Day { clock, mock }
    }

    fn tick(&self) -> Tick {
        let log = read_kernel_log(
            &LogSource::Lines {
                lines: self.mock.kernel_log(),
                uptime_seconds: self.mock.uptime_seconds(),
            },
            &ReadLimits::default(),
        )
        .unwrap();
        Tick::Sampled {
            snapshot: Box::new(self.mock.snapshot(GpuFilter::All).unwrap()),
            kernel_log: Some(Box::new(log)),
        }
    }

    /// Samples every 10 s from now until `until_ms` (inclusive).
    fn run(&self, recorder: &mut Recorder, until_ms: i64) {
        while self.clock.now_unix_ms() <= until_ms {
            recorder.record(self.tick()).unwrap();
            self.clock.advance(Duration::from_secs(10));
        }
    }
}

fn query(gpu: Option<u32>) -> TimelineQuery {
    TimelineQuery {
        from_ms: 0,
        to_ms: 0,
        gpu: gpu.map(agent::recorder::timeline::GpuSelector::Index),
        max_events: 5000,
        max_bytes: 10 * 1024 * 1024,
    }
}

fn timeline(
    dir: &Path,
    clock: &dyn WallClock,
    since_seconds: u64,
    gpu: Option<u32>,
) -> TimelineReport {
    read_timeline(Some(dir), since_seconds, query(gpu), clock)
}

/// `(ms after T0, gpu, kind, metric)` of every event.
fn events(r: &TimelineReport) -> Vec<(i64, Option<u32>, EventKind, Option<String>)> {
    let mut all: Vec<_> = r
        .gpus
        .iter()
        .flat_map(|g| g.events.iter())
        .chain(r.node_events.iter())
        .map(|e| (e.unix_ms - T0, e.gpu, e.kind, e.metric.clone()))
        .collect();
    all.sort_by_key(|e| e.0);
    all
}

#[test]
fn a_scripted_day_yields_every_event_once_in_order_at_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 24 * HOUR - 10_000);
    let r = timeline(dir.path(), day.clock.as_ref(), 86_400, None);
    assert!(r.recorder_available, "{:?}", r.notes);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert!(!r.truncated);
    let m = |s: &str| Some(s.to_string());
    let expected = vec![
        (
            2 * HOUR,
            Some(2),
            EventKind::TemperatureAboveSlowdown,
            m("temperature_c"),
        ),
        (
            2 * HOUR,
            Some(2),
            EventKind::ThrottleStart,
            m("sw_thermal_slowdown"),
        ),
        (
            2 * HOUR + 600_000,
            Some(2),
            EventKind::TemperatureBelowSlowdown,
            m("temperature_c"),
        ),
        (
            2 * HOUR + 600_000,
            Some(2),
            EventKind::ThrottleEnd,
            m("sw_thermal_slowdown"),
        ),
        (
            5 * HOUR,
            Some(4),
            EventKind::CounterIncrement,
            m("ecc_volatile_corrected"),
        ),
        (
            10 * HOUR,
            Some(1),
            EventKind::PcieLinkChange,
            m("pcie_width_current"),
        ),
        (23 * HOUR + 1_800_000, Some(5), EventKind::GpuLost, None),
        (23 * HOUR + 2_400_000, Some(5), EventKind::GpuReturned, None),
        (23 * HOUR + 2_700_000, Some(5), EventKind::Xid, m("xid_79")),
    ];
    assert_eq!(events(&r), expected);
    // Events older than the raw hour come from minute aggregates and say so; the rest are exact.
    let gpu2 = r.gpus.iter().find(|g| g.index == 2).unwrap();
    assert!(gpu2.events.iter().all(|e| e.approximate));
    let gpu5 = r.gpus.iter().find(|g| g.index == 5).unwrap();
    assert!(gpu5.events.iter().all(|e| !e.approximate));
    assert!(
        gpu5.events[2].detail.contains("Xid 79"),
        "{}",
        gpu5.events[2].detail
    );
    assert_eq!(r.gpus.len(), 8);
    assert!(r.coverage.as_ref().unwrap().full_resolution_from.is_some());

    // One GPU, the last hour: only its own events, exact.
    let r = timeline(dir.path(), day.clock.as_ref(), 3600, Some(5));
    assert_eq!(r.gpus.len(), 1);
    let kinds: Vec<EventKind> = events(&r).into_iter().map(|e| e.2).collect();
    assert_eq!(
        kinds,
        [EventKind::GpuLost, EventKind::GpuReturned, EventKind::Xid]
    );
    // The thermal episode is outside the last hour.
    let r = timeline(dir.path(), day.clock.as_ref(), 3600, Some(2));
    assert!(r.gpus[0].events.is_empty());
}

#[test]
fn aggregates_match_the_samples_they_summarise() {
    // A day recorded from T0 up to just after the minute 23h20m, where GPU 0 warms up twice.
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 23 * HOUR + 22 * 60_000);
    let read = store::read_history(dir.path(), T0).unwrap();
    let minute = T0 + 23 * HOUR + 20 * 60_000;
    let agg = read
        .minutes
        .iter()
        .find(|m| m.t == minute)
        .expect("the minute was aggregated");
    let temps: Vec<f64> = read
        .raw
        .iter()
        .filter_map(|r| match r {
            Record::Sample { t, gpus, .. } if (minute..minute + 60_000).contains(t) => {
                gpus[0].gauges.get(Gauge::TemperatureC).copied()
            }
            _ => None,
        })
        .collect();
    assert_eq!(temps, [33.0, 50.0, 50.0, 70.0, 70.0, 70.0]);
    let g0 = &agg.gpus[0];
    let mean = temps.iter().sum::<f64>() / temps.len() as f64;
    assert_eq!(agg.n, 6);
    assert_eq!(
        g0.gauges.get(Gauge::TemperatureC),
        Some(&[33.0, 70.0, mean, 70.0])
    );
    // The timeline's bucket over that minute says the same.
    let r = read_timeline(
        Some(dir.path()),
        180,
        TimelineQuery {
            max_bytes: 1 << 20,
            ..query(Some(0))
        },
        &*ManualClock::at(minute + 120_000),
    );
    let temp = &r.gpus[0].metrics[0];
    assert_eq!(temp.name, "temperature_c");
    let all: Vec<f64> = temp
        .buckets
        .iter()
        .flat_map(|b| b.get(1).copied())
        .collect();
    assert!(all.contains(&70.0), "{:?}", temp.buckets);
}

#[test]
fn retention_drops_the_oldest_data_of_each_tier() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(
        StoreOptions {
            raw_retention: Duration::from_secs(600),
            minute_retention: Duration::from_secs(3 * 3600),
            ..options(dir.path())
        },
        day.clock.clone(),
    )
    .unwrap();
    day.run(&mut rec, T0 + 6 * HOUR);
    let now = day.clock.now_unix_ms();
    let read = store::read_history(dir.path(), 0).unwrap();
    let oldest_raw = read.raw.iter().map(Record::time_ms).min().unwrap();
    let oldest_minute = read.minutes.first().unwrap().t;
    // Whole segments go, checked when a segment closes: at most two segment spans (a sixth of the
    // retention each, at least 1 min) extra.
    assert!(
        oldest_raw >= now - 600_000 - 200_000,
        "raw kept from {}",
        (now - oldest_raw) / 1000
    );
    assert!(
        oldest_raw <= now - 600_000,
        "the last 10 minutes are all there"
    );
    assert!(
        oldest_minute >= now - 3 * HOUR - 60 * 60_000,
        "minutes kept from {}",
        (now - oldest_minute) / 1000
    );
    assert!(oldest_minute <= now - 3 * HOUR);
    let (segments, foreign) = store::list_segments(dir.path()).unwrap();
    assert!(foreign.is_empty());
    assert!(segments.iter().filter(|s| s.tier == Tier::Raw).count() <= 8);
}

#[test]
fn a_reader_during_writes_never_sees_a_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                if let Ok(read) = store::read_history(&path, 0) {
                    assert!(read.notes.is_empty(), "{:?}", read.notes);
                    for r in &read.raw {
                        if let Record::Sample { gpus, .. } = r {
                            assert_eq!(gpus.len(), 8);
                        }
                    }
                    reads += 1;
                }
            }
            reads
        })
    };
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + HOUR);
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
}

#[test]
fn a_writer_killed_mid_record_loses_only_that_record_and_the_restart_shows() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 5 * 60_000);
    drop(rec);
    // What SIGKILL in the middle of a write leaves: the last record cut short.
    let (segments, _) = store::list_segments(dir.path()).unwrap();
    let raw = segments.iter().find(|s| s.tier == Tier::Raw).unwrap();
    let len = std::fs::metadata(&raw.path).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&raw.path)
        .unwrap();
    f.set_len(len - 100).unwrap();
    // The agent restarts two minutes later.
    day.clock.advance(Duration::from_secs(120));
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 10 * 60_000);
    let read = store::read_history(dir.path(), 0).unwrap();
    assert_eq!(read.notes.len(), 1, "{:?}", read.notes);
    assert!(
        read.notes[0].contains("incomplete last record"),
        "{}",
        read.notes[0]
    );
    let samples: Vec<i64> = read
        .raw
        .iter()
        .filter(|&r| matches!(r, Record::Sample { .. }))
        .map(|r| r.time_ms() - T0)
        .collect();
    // 0..=300 s every 10 s, less the torn one (300 s), then 430 s onwards.
    assert_eq!(samples.first(), Some(&0));
    assert!(
        samples.contains(&290_000) && !samples.contains(&300_000),
        "{samples:?}"
    );
    assert!(samples.contains(&430_000));
    let r = timeline(dir.path(), day.clock.as_ref(), 3600, None);
    let restarts: Vec<_> = r
        .node_events
        .iter()
        .filter(|e| e.kind == EventKind::AgentRestarted)
        .collect();
    assert_eq!(restarts.len(), 1, "{:?}", r.node_events);
    assert_eq!(restarts[0].unix_ms - T0, 430_000);
}

#[test]
fn corrupt_and_foreign_files_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 15 * 60_000);
    drop(rec);
    let (segments, _) = store::list_segments(dir.path()).unwrap();
    let first = segments.iter().find(|s| s.tier == Tier::Raw).unwrap();
    let mut bytes = std::fs::read(&first.path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&first.path, &bytes).unwrap();
    std::fs::write(
        dir.path().join("raw-0000000000001.seg"),
        b"not a segment at all",
    )
    .unwrap();
    std::fs::write(dir.path().join("README.txt"), b"left by someone").unwrap();
    let r = timeline(dir.path(), day.clock.as_ref(), 3600, None);
    assert!(r.recorder_available);
    let notes = r.notes.join("\n");
    assert!(notes.contains("corrupt record at byte"), "{notes}");
    assert!(
        notes.contains("raw-0000000000001.seg") && notes.contains("magic"),
        "{notes}"
    );
    assert!(
        notes.contains("README.txt: not a history segment"),
        "{notes}"
    );
    // The second raw segment (from 10 min on) is intact.
    assert!(r.gpus[0].samples >= 60, "{}", r.gpus[0].samples);
}

#[test]
fn a_full_volume_drops_the_oldest_data_first() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let budget = 400 * 1024;
    let mut rec = Recorder::open(
        StoreOptions {
            max_bytes: budget,
            ..options(dir.path())
        },
        day.clock.clone(),
    )
    .unwrap();
    day.run(&mut rec, T0 + 3 * HOUR);
    let (segments, _) = store::list_segments(dir.path()).unwrap();
    let total: u64 = segments.iter().map(|s| s.bytes).sum();
    assert!(total <= budget, "{total} bytes in use, budget {budget}");
    let read = store::read_history(dir.path(), 0).unwrap();
    let newest = read.raw.iter().map(Record::time_ms).max().unwrap();
    assert_eq!(newest, T0 + 3 * HOUR, "the newest sample is kept");
    let oldest = read.raw.iter().map(Record::time_ms).min().unwrap();
    assert!(oldest > T0 + HOUR, "the oldest samples were dropped");
}

/// A backend that blocks in `snapshot` while `hang` is set.
struct Hanging {
    inner: MockBackend,
    hang: Arc<AtomicBool>,
}

impl GpuBackend for Hanging {
    fn source(&self) -> DataSource {
        self.inner.source()
    }
    fn snapshot(&self, filter: GpuFilter) -> Result<NodeSnapshot, BackendError> {
        while self.hang.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.inner.snapshot(filter)
    }
    fn identities(&self) -> Result<Vec<DeviceIdentity>, BackendError> {
        self.inner.identities()
    }
}

#[test]
fn a_hung_nvml_call_is_skipped_and_noted_and_sampling_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn WallClock> = Arc::new(agent::clock::SystemClock);
    let hang = Arc::new(AtomicBool::new(true));
    let backend = Arc::new(Hanging {
        inner: MockBackend::new(
            Fixture::builtin("healthy").unwrap(),
            DataSource::MockScenario("healthy".into()),
        ),
        hang: hang.clone(),
    });
    let rec = Recorder::open(options(dir.path()), clock).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let release = hang.clone();
    runtime.block_on(async {
        let opts = agent::recorder::LoopOptions {
            interval: Duration::from_millis(50),
            deadline: Duration::from_millis(300),
            kernel_log: None,
        };
        let stop = async {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            release.store(false, Ordering::Release);
            tokio::time::sleep(Duration::from_millis(1500)).await;
        };
        agent::recorder::run(rec, backend, opts, stop).await;
    });
    let read = store::read_history(dir.path(), 0).unwrap();
    let skipped: Vec<&str> = read
        .raw
        .iter()
        .filter_map(|r| match r {
            Record::Skipped { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        skipped
            .iter()
            .any(|r| r.contains("did not answer within 300ms")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|r| r.contains("still not returned")),
        "{skipped:?}"
    );
    let samples = read
        .raw
        .iter()
        .filter(|r| matches!(r, Record::Sample { .. }))
        .count();
    assert!(
        samples >= 3,
        "sampling resumed after the call returned: {samples} samples"
    );
    let r = read_timeline(
        Some(dir.path()),
        60,
        query(None),
        &agent::clock::SystemClock,
    );
    assert!(
        r.node_events
            .iter()
            .any(|e| e.kind == EventKind::SamplingSkipped)
    );
    runtime.shutdown_background();
}

#[test]
fn without_a_recorder_the_timeline_says_so() {
    let r = read_timeline(None, 3600, query(None), &agent::clock::SystemClock);
    assert!(!r.recorder_available);
    assert!(r.notes[0].contains("No flight recorder"), "{:?}", r.notes);
    let dir = tempfile::tempdir().unwrap();
    let r = read_timeline(
        Some(dir.path()),
        3600,
        query(None),
        &agent::clock::SystemClock,
    );
    assert!(!r.recorder_available);
    assert!(
        r.notes[0].contains("has not written any history"),
        "{:?}",
        r.notes
    );
}

#[test]
fn the_answer_stays_under_its_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 24 * HOUR - 10_000);
    let r = read_timeline(
        Some(dir.path()),
        86_400,
        TimelineQuery {
            max_bytes: 4096,
            ..query(None)
        },
        day.clock.as_ref(),
    );
    let size = serde_json::to_vec(&r).unwrap().len();
    assert!(r.truncated);
    assert!(r.narrow.as_ref().unwrap().contains("since_seconds"));
    assert!(
        size <= 4096 || r.gpus.iter().all(|g| g.events.is_empty()),
        "{size}"
    );
    let full = timeline(dir.path(), day.clock.as_ref(), 86_400, None);
    assert_eq!(r.events_total, full.events_total);
}

#[test]
fn history_gives_health_a_baseline_and_the_rules_only_it_allows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(T0);
    let fixture = Fixture::from_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/h100-hot-and-erring.yaml"),
    )
    .unwrap();
    let day = Day {
        mock: MockBackend::with_clock(
            fixture,
            DataSource::MockFixture("hot".into()),
            clock.clone(),
        ),
        clock,
    };
    let mut rec = Recorder::open(options(dir.path()), day.clock.clone()).unwrap();
    day.run(&mut rec, T0 + 24 * HOUR - 10_000);
    let now = day.clock.now_unix_ms();
    let read = store::read_history(dir.path(), now - 24 * HOUR).unwrap();
    let current = day.mock.snapshot(GpuFilter::All).unwrap();
    let mut found: Vec<(u32, String)> = agent::recorder::health::findings(&read, now)
        .into_iter()
        .map(|(gpu, f)| (gpu, f.check.id()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (2, "clock_events.sustained".to_string()),
            (4, "ecc.sbe_rate_24h".to_string()),
            (6, "xid.repeated".to_string()),
        ]
    );
    // The recorded baseline makes the rate rules run on the first call: GPU 2's replays jumped.
    let (snapshot, age_ms) = agent::recorder::health::baseline(&read, now, &current).unwrap();
    assert!((60_000..=70_000).contains(&age_ms), "{age_ms}");
    let report = agent::health::evaluate(
        &current,
        Some(&agent::health::Baseline {
            snapshot,
            elapsed: Duration::from_millis(age_ms as u64),
        }),
        &[],
        &agent::health::EvaluateOptions::default(),
    );
    let rules: Vec<String> = report.rate_rules_evaluated.iter().map(|r| r.id()).collect();
    assert!(rules.contains(&"pcie.replay_rate".to_string()), "{rules:?}");
    assert!(rules.contains(&"nvlink.crc_rate".to_string()), "{rules:?}");
    assert!(
        report.gpus[2]
            .findings
            .iter()
            .any(|f| f.check.id() == "pcie.replay_rate"),
        "{:#?}",
        report.gpus[2].findings
    );
}

#[test]
fn a_version_1_history_is_still_read_and_a_newer_version_is_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let day = Day::new();
    let snapshot = day.mock.snapshot(GpuFilter::All).unwrap();
    let header = |version: u32| {
        Record::Header(store::SegmentHeader {
            format: store::FORMAT.into(),
            version,
            tier: "raw".into(),
            started_ms: T0,
            writer_started_ms: T0,
            interval_ms: 10_000,
            writer: "agent 0.0.9".into(),
        })
    };
    // Version 1: every record JSON, after the magic "GPUHIST1".
    let mut v1 = store::MAGIC_V1.to_vec();
    v1.extend(store::frame(&serde_json::to_vec(&header(1)).unwrap()));
    for (i, temperature) in [40.0, 95.0].into_iter().enumerate() {
        let mut gpus = agent::recorder::sample::node_samples(&snapshot);
        gpus[2].gauges.insert(Gauge::TemperatureC, temperature);
        let sample = Record::Sample {
            t: T0 + i as i64 * 10_000,
            gpus,
            xids: Vec::new(),
        };
        v1.extend(store::frame(&serde_json::to_vec(&sample).unwrap()));
    }
    std::fs::write(dir.path().join(format!("raw-{T0:013}.seg")), v1).unwrap();
    let mut v3 = store::MAGIC.to_vec();
    v3.extend(store::frame(&serde_json::to_vec(&header(3)).unwrap()));
    std::fs::write(dir.path().join(format!("raw-{:013}.seg", T0 + 1)), v3).unwrap();

    day.clock.advance(Duration::from_secs(20));
    let r = timeline(dir.path(), day.clock.as_ref(), 3600, Some(2));
    assert!(r.recorder_available, "{:?}", r.notes);
    assert_eq!(r.gpus[0].samples, 2);
    let events: Vec<_> = events(&r).into_iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(
        events,
        [(10_000, EventKind::TemperatureAboveSlowdown)],
        "{:?}",
        r.gpus[0].events
    );
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].contains("version 3 (this agent reads versions [1, 2])"),
        "{}",
        r.notes[0]
    );
}
