//! The flight recorder's costs: CPU and RSS of `agent idle` sampling 8 GPUs through the fake
//! libnvidia-ml at the default interval, bytes on disk for 24 h of 8 GPUs, and `get_gpu_timeline`
//! over those 24 h.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent::clock::{ManualClock, SystemClock, WallClock};
use agent::gpu::mock::MockBackend;
use agent::gpu::{DataSource, GpuBackend, GpuFilter};
use agent::recorder::store::{
    MAGIC_V1, Record, StoreOptions, decode, frame, list_segments, read_history,
};
use agent::recorder::timeline::{self, TimelineQuery};
use agent::recorder::{Recorder, Tick};
use gpu_fixture::Fixture;
use serde_json::json;

use crate::agent::AgentSetup;
use crate::procfs;
use crate::report::{Row, mib, ms};
use crate::stats::Samples;
use crate::stdio::{self, Peer};

/// What was measured.
pub struct RecorderResults {
    pub interval: Duration,
    pub window: Duration,
    /// CPU of `agent idle` over `window`, in percent of one core.
    pub cpu_percent: f64,
    pub rss: procfs::Memory,
    pub history_hours: u64,
    pub history_bytes: u64,
    pub timeline: Samples,
    pub timeline_bytes: usize,
    /// Where a call's time goes, in process: reading and decoding the window's segments ...
    pub read: Samples,
    /// ... building the report from them ...
    pub build: Samples,
    /// ... and reading the same records written as format 1 (every record JSON).
    pub read_v1: Samples,
}

/// How long each part runs.
pub struct RecorderPlan {
    pub interval: Duration,
    pub window: Duration,
    pub history_hours: u64,
    pub timeline_calls: usize,
}

impl RecorderPlan {
    /// Seconds-long for `--quick`, the default interval over two minutes otherwise.
    pub fn new(quick: bool) -> RecorderPlan {
        if quick {
            RecorderPlan {
                interval: Duration::from_millis(100),
                window: Duration::from_secs(2),
                history_hours: 2,
                timeline_calls: 5,
            }
        } else {
            RecorderPlan {
                interval: Duration::from_secs(10),
                window: Duration::from_secs(120),
                history_hours: 24,
                timeline_calls: 200,
            }
        }
    }
}

/// Runs the three measurements.
pub fn measure(setup: &AgentSetup, plan: &RecorderPlan) -> anyhow::Result<RecorderResults> {
    let (cpu_percent, rss) = idle_cost(setup, plan)?;
    let history = tempfile::tempdir()?;
    let history_bytes = write_history(&setup.fixture, history.path(), plan.history_hours)?;
    let (timeline, timeline_bytes) = timeline_latency(setup, history.path(), plan)?;
    let (read, build, read_v1) = breakdown(history.path())?;
    Ok(RecorderResults {
        read,
        build,
        read_v1,
        interval: plan.interval,
        window: plan.window,
        cpu_percent,
        rss,
        history_hours: plan.history_hours,
        history_bytes,
        timeline,
        timeline_bytes,
    })
}

/// `agent idle` on the fake NVML path: CPU over the window (utime + stime, which counts the
/// blocking threads that come and go) and RSS at its end.
fn idle_cost(setup: &AgentSetup, plan: &RecorderPlan) -> anyhow::Result<(f64, procfs::Memory)> {
    let dir = tempfile::tempdir()?;
    let empty_log = dir.path().join("kmsg");
    std::fs::write(&empty_log, "")?;
    let mut command: Command = setup.fake_nvml_command();
    let mut child = command
        .arg("idle")
        .arg("--history-dir")
        .arg(dir.path().join("history"))
        .arg("--sample-interval")
        .arg(format!("{}ms", plan.interval.as_millis()))
        .arg("--kmsg-path")
        .arg(&empty_log)
        .arg("--log-level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    // Past start-up (NVML init, the first samples).
    std::thread::sleep(plan.interval * 2 + Duration::from_millis(500));
    let before = stat_cpu(pid)?;
    let started = Instant::now();
    std::thread::sleep(plan.window);
    let cpu = stat_cpu(pid)? - before;
    let wall = started.elapsed();
    let rss = procfs::memory(pid)?;
    let _ = child.kill();
    let _ = child.wait();
    Ok((cpu.as_secs_f64() / wall.as_secs_f64() * 100.0, rss))
}

/// utime + stime of the whole process (exited threads included), from `/proc/PID/stat`.
fn stat_cpu(pid: u32) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no command field"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// `hours` of history for the fixture's GPUs at 10 s, ending now, written through the recorder with
/// a test clock; the bytes its segments take.
fn write_history(fixture: &Path, dir: &Path, hours: u64) -> anyhow::Result<u64> {
    let now = SystemClock.now_unix_ms();
    let clock = ManualClock::at(now - hours as i64 * 3_600_000);
    let mock = MockBackend::with_clock(
        Fixture::from_path(fixture)?,
        DataSource::MockFixture("bench".into()),
        clock.clone(),
    );
    let opts = StoreOptions {
        dir: dir.to_owned(),
        raw_retention: Duration::from_secs(3600),
        minute_retention: Duration::from_secs(86_400),
        max_bytes: u64::MAX,
        interval: Duration::from_secs(10),
    };
    let mut recorder = Recorder::open(opts, clock.clone())?;
    while clock.now_unix_ms() <= now {
        let snapshot = mock.snapshot(GpuFilter::All)?;
        recorder.record(Tick::Sampled {
            snapshot: Box::new(snapshot),
            kernel_log: None,
        })?;
        clock.advance(Duration::from_secs(10));
    }
    recorder.flush()?;
    let (segments, _) = list_segments(dir)?;
    Ok(segments.iter().map(|s| s.bytes).sum())
}

/// `get_gpu_timeline {since_seconds: 86400}` in one session reading that history.
fn timeline_latency(
    setup: &AgentSetup,
    history: &Path,
    plan: &RecorderPlan,
) -> anyhow::Result<(Samples, usize)> {
    let mut command = setup.mock_command();
    command.env("AGENT_HISTORY_DIR", history);
    let mut peer = Peer::spawn("agent (timeline)", command)?;
    peer.call(&stdio::initialize(0), 0)?;
    peer.send(&stdio::initialized())?;
    let args = json!({"since_seconds": 86_400});
    let mut samples = Samples::default();
    let mut bytes = 0;
    for i in 0..plan.timeline_calls + 3 {
        let id = i as u64 + 1;
        let (took, reply) =
            peer.call(&stdio::tools_call(id, "get_gpu_timeline", args.clone()), id)?;
        let content = &reply["result"]["structuredContent"];
        anyhow::ensure!(
            content["recorder_available"] == true,
            "get_gpu_timeline found no history: {content}"
        );
        bytes = serde_json::to_vec(content)?.len();
        if i >= 3 {
            samples.push_duration(took);
        }
    }
    peer.finish(Duration::from_secs(2));
    Ok((samples, bytes))
}

/// `get_gpu_timeline`'s two halves timed in process over the last 24 h (20 rounds each), and the
/// read half once more over a copy of the history written as format 1 (JSON records).
fn breakdown(dir: &Path) -> anyhow::Result<(Samples, Samples, Samples)> {
    let v1 = tempfile::tempdir()?;
    let (segments, _) = list_segments(dir)?;
    for seg in &segments {
        let decoded = decode(&std::fs::read(&seg.path)?);
        let mut out = MAGIC_V1.to_vec();
        for r in decoded.records {
            let r = match r {
                Record::Header(mut h) => {
                    h.version = 1;
                    Record::Header(h)
                }
                other => other,
            };
            out.extend(frame(&serde_json::to_vec(&r)?));
        }
        std::fs::write(
            v1.path().join(seg.path.file_name().unwrap_or_default()),
            out,
        )?;
    }
    let now = SystemClock.now_unix_ms();
    let query = TimelineQuery {
        from_ms: now - 86_400_000,
        to_ms: now,
        gpu: None,
        max_events: 50,
        max_bytes: agent::recorder::TIMELINE_MAX_BYTES,
    };
    let (mut read, mut build, mut read_v1) =
        (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..20 {
        let started = Instant::now();
        let history = read_history(dir, query.from_ms)?;
        read.push_duration(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(timeline::build(&history, &query));
        build.push_duration(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(read_history(v1.path(), query.from_ms)?);
        read_v1.push_duration(started.elapsed());
    }
    Ok((read, build, read_v1))
}

/// The report's rows.
pub fn rows(r: &RecorderResults) -> Vec<Row> {
    let p = |q: f64| r.timeline.percentile(q).map_or("n/a".into(), ms);
    vec![
        Row::new(
            "**Flight recorder (`agent idle`), 8× H100 on the fake libnvidia-ml**",
            "",
        ),
        Row::new(
            format!(
                "recorder CPU at a {} ms interval, over {} s (target ≤ 0.2 % of one core at 10 s)",
                r.interval.as_millis(),
                r.window.as_secs()
            ),
            format!("{:.3} % of one core", r.cpu_percent),
        ),
        Row::new(
            "`agent idle` RSS while recording / peak (target ≤ 12 MiB)",
            format!("{} / {}", mib(r.rss.rss_bytes), mib(r.rss.hwm_bytes)),
        ),
        Row::new(
            format!(
                "history on disk, {} h × 8 GPUs at 10 s (target ≤ 8 MiB for 24 h)",
                r.history_hours
            ),
            mib(r.history_bytes),
        ),
        Row::new(
            format!(
                "`get_gpu_timeline` over {} h, every GPU: p50 / p99, {} calls (target p99 ≤ 20 ms)",
                r.history_hours,
                r.timeline.len()
            ),
            format!("{} / {}", p(50.0), p(99.0)),
        ),
        Row::new(
            "where a call's time goes, in process (median of 20): reading the segments / building the report",
            format!(
                "{} / {}",
                r.read.median().map_or("n/a".into(), ms),
                r.build.median().map_or("n/a".into(), ms)
            ),
        ),
        Row::new(
            "reading the same history written as format 1 (every record JSON), median of 20",
            r.read_v1.median().map_or("n/a".into(), ms),
        ),
        Row::new(
            "`get_gpu_timeline` answer size",
            format!("{:.1} KiB", r.timeline_bytes as f64 / 1024.0),
        ),
    ]
}
