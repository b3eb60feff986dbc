//! The flight recorder: `agent idle` samples every GPU every `--sample-interval` and keeps a bounded
//! history under `--history-dir`, so a session can later ask what happened before anyone looked
//! (`get_gpu_timeline`, and the history-only rules of `get_gpu_health`).
//!
//! Flow per tick: backend snapshot with a deadline (a hung NVML call is skipped and noted) and the
//! kernel log's new Xid lines → [`sample`] (what is kept of a snapshot) → [`store`] (raw tier) and
//! [`aggregate`] (one-minute tier). Reading back: [`store::read_history`] → [`timeline::build`].
//! The on-disk format is described in `docs/history-format.md`.

pub mod aggregate;
pub mod cli;
pub mod codec;
pub mod health;
pub mod metric_map;
pub mod sample;
pub mod store;
pub mod timeline;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::WallClock;
use crate::gpu::{DeviceIdentity, GpuBackend, GpuFilter, NodeSnapshot};
use crate::xid::{KernelLog, LogSource, PciLocation, ReadLimits, RecordTime};
use aggregate::Aggregator;
use sample::{XidSample, node_samples};
use store::{HistoryWriter, Record, StoreOptions, Tier};

/// Default sampling interval (`--sample-interval`).
pub const DEFAULT_SAMPLE_INTERVAL: &str = "10s";
/// Default full-resolution retention (`--history-raw-retention`).
pub const DEFAULT_RAW_RETENTION: &str = "1h";
/// Default one-minute-aggregate retention (`--history-retention`).
pub const DEFAULT_RETENTION: &str = "24h";
/// Default byte budget of the history directory (`--history-max-bytes`).
pub const DEFAULT_MAX_BYTES: u64 = 48 * 1024 * 1024;

/// The most bytes a `get_gpu_timeline` answer takes by default (the model's context is precious).
pub const TIMELINE_MAX_BYTES: usize = 32 * 1024;

/// `get_gpu_timeline`'s body: reads the history for the last `since_seconds` (I/O), then builds the
/// report. Without a history it answers with a note, never an error.
pub fn read_timeline(
    dir: Option<&std::path::Path>,
    since_seconds: u64,
    mut query: timeline::TimelineQuery,
    clock: &dyn WallClock,
) -> timeline::TimelineReport {
    let now = clock.now_unix_ms();
    query.to_ms = now;
    query.from_ms = now.saturating_sub(since_seconds.saturating_mul(1000) as i64);
    let unavailable = |note: String| timeline::TimelineReport {
        recorder_available: false,
        from: crate::xid::time::format_rfc3339(query.from_ms * 1000),
        to: crate::xid::time::format_rfc3339(query.to_ms * 1000),
        coverage: None,
        bucket_seconds: 0,
        bucket_starts: Vec::new(),
        gpus: Vec::new(),
        node_events: Vec::new(),
        events_total: 0,
        truncated: false,
        narrow: None,
        notes: vec![note],
    };
    let Some(dir) = dir else {
        return unavailable(
            "No flight recorder on this agent: history is off (no --history-dir / AGENT_HISTORY_DIR). \
             In the cluster the operator enables it with `agent.history.enabled`; locally, run \
             `agent idle --history-dir DIR` next to the session. Use get_gpu_health and \
             analyze_xid_errors for the present state and the kernel log."
                .into(),
        );
    };
    match store::read_history(dir, query.from_ms) {
        Ok(read) if read.raw.is_empty() && read.minutes.is_empty() => {
            let mut r = unavailable(format!(
                "The flight recorder has not written any history in {} yet: `agent idle` records \
                 there every sample interval once it runs.",
                dir.display()
            ));
            r.notes.extend(read.notes);
            r
        }
        Ok(read) => timeline::build(&read, &query),
        Err(e) => unavailable(format!(
            "The flight recorder's history {} cannot be read ({e}): is `agent idle` running with \
             the same --history-dir?",
            dir.display()
        )),
    }
}

/// What one tick produced.
pub enum Tick {
    /// A snapshot, and the kernel log as read at the same tick (when it could be read).
    Sampled {
        snapshot: Box<NodeSnapshot>,
        kernel_log: Option<Box<KernelLog>>,
    },
    /// No snapshot, and why.
    Skipped(String),
}

/// The recorder's state between ticks: the writer, the minute being aggregated and which kernel-log
/// Xids were already recorded.
pub struct Recorder {
    writer: HistoryWriter,
    aggregator: Aggregator,
    clock: Arc<dyn WallClock>,
    /// Xids logged at or before this wall time (ms) are already in the history.
    xid_after_ms: i64,
    /// The newest since-boot stamp (µs) recorded in this process: exact, unlike wall conversions.
    xid_after_boot_us: Option<u64>,
}

impl Recorder {
    /// Opens the history; Xids already recorded by an earlier process are not recorded twice.
    pub fn open(opts: StoreOptions, clock: Arc<dyn WallClock>) -> io::Result<Recorder> {
        let now = clock.now_unix_ms();
        let retention_ms = opts.minute_retention.as_millis() as i64;
        let previous = store::read_history(&opts.dir, now - retention_ms).unwrap_or_default();
        let newest_xid = previous
            .raw
            .iter()
            .filter_map(|r| match r {
                Record::Sample { xids, .. } => xids.iter().map(|x| x.unix_ms).max(),
                _ => None,
            })
            .chain(
                previous
                    .minutes
                    .iter()
                    .flat_map(|m| m.xids.iter().map(|x| x.unix_ms)),
            )
            .max();
        let writer = HistoryWriter::open(opts, now)?;
        Ok(Recorder {
            writer,
            aggregator: Aggregator::default(),
            clock,
            xid_after_ms: newest_xid.unwrap_or(now - retention_ms),
            xid_after_boot_us: None,
        })
    }

    /// Crash tests: stop the process halfway through the `n`th raw record ([`HistoryWriter::stop_mid_record`]).
    pub fn stop_mid_record(&mut self, n: u64) {
        self.writer.stop_mid_record(n);
    }

    /// Records one tick at the clock's current time.
    pub fn record(&mut self, tick: Tick) -> io::Result<()> {
        let t = self.clock.now_unix_ms();
        match tick {
            Tick::Sampled {
                snapshot,
                kernel_log,
            } => {
                let ids: Vec<DeviceIdentity> =
                    snapshot.devices.iter().map(|d| d.identity()).collect();
                let xids = kernel_log
                    .map(|log| self.new_xids(&log, &ids, t))
                    .unwrap_or_default();
                let gpus = node_samples(&snapshot);
                let minute = self.aggregator.push(t, &gpus, &xids);
                self.writer
                    .append(Tier::Raw, &Record::Sample { t, gpus, xids }, t)?;
                tracing::debug!(t, "recorded a sample");
                if let Some(m) = minute {
                    self.writer.append(Tier::Minute, &Record::Minute(m), t)?;
                }
            }
            Tick::Skipped(reason) => {
                let minute = self.aggregator.skip(t);
                self.writer
                    .append(Tier::Raw, &Record::Skipped { t, reason }, t)?;
                if let Some(m) = minute {
                    self.writer.append(Tier::Minute, &Record::Minute(m), t)?;
                }
            }
        }
        for note in self.writer.notes.drain(..) {
            tracing::warn!(%note, "history");
        }
        Ok(())
    }

    /// Writes the minute in progress (at shutdown).
    pub fn flush(&mut self) -> io::Result<()> {
        let t = self.clock.now_unix_ms();
        match self.aggregator.flush() {
            Some(m) => self.writer.append(Tier::Minute, &Record::Minute(m), t),
            None => Ok(()),
        }
    }

    /// The Xids of `log` not recorded yet, attributed to GPUs by PCI address.
    fn new_xids(
        &mut self,
        log: &KernelLog,
        gpus: &[DeviceIdentity],
        now_ms: i64,
    ) -> Vec<XidSample> {
        let mut out = Vec::new();
        let mut newest_boot = self.xid_after_boot_us;
        for x in &log.xids {
            let unix_ms = match x.time {
                RecordTime::SinceBoot(us) => {
                    let fresh = match self.xid_after_boot_us {
                        Some(after) => us > after,
                        None => true,
                    };
                    let age_ms = (log.clock.monotonic_micros.saturating_sub(us) / 1000) as i64;
                    let unix_ms = now_ms - age_ms;
                    // Across a restart only wall times are known: allow for conversion jitter.
                    if !fresh
                        || (self.xid_after_boot_us.is_none() && unix_ms <= self.xid_after_ms + 50)
                    {
                        continue;
                    }
                    newest_boot = Some(newest_boot.map_or(us, |n| n.max(us)));
                    unix_ms
                }
                RecordTime::Wall(us) => {
                    let ms = us / 1000;
                    if ms <= self.xid_after_ms {
                        continue;
                    }
                    ms
                }
                RecordTime::Unknown => continue,
            };
            let gpu = gpus.iter().find_map(|g| {
                let p = g.pci.as_ref().ok()?;
                let loc = PciLocation::from_numeric(
                    p.bus_id.domain,
                    p.bus_id.bus.into(),
                    p.bus_id.device.into(),
                )?;
                (loc == x.pci).then_some(g.index)
            });
            out.push(XidSample {
                unix_ms,
                gpu,
                code: x.code,
                pci: x.pci.to_string(),
                message: x.message.chars().take(200).collect(),
            });
        }
        self.xid_after_boot_us = newest_boot;
        if let Some(newest) = out.iter().map(|x| x.unix_ms).max() {
            self.xid_after_ms = self.xid_after_ms.max(newest);
        }
        out
    }
}

/// How the sampling loop reads the node.
pub struct LoopOptions {
    pub interval: Duration,
    /// Longest a snapshot may take before the tick is skipped.
    pub deadline: Duration,
    /// Where to read Xids; `None` = do not read the kernel log.
    pub kernel_log: Option<Arc<dyn Fn() -> LogSource + Send + Sync>>,
}

/// Samples until `shutdown` resolves, then writes the minute in progress.
pub async fn run(
    mut recorder: Recorder,
    backend: Arc<dyn GpuBackend>,
    opts: LoopOptions,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let hung = Arc::new(AtomicBool::new(false));
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    let mut kernel_log_warned = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let tick = sample_once(&backend, &hung, opts.deadline).await;
        let tick = match (tick, &opts.kernel_log) {
            (Tick::Sampled { snapshot, .. }, Some(source)) => {
                let source = source();
                let log = tokio::task::spawn_blocking(move || {
                    crate::xid::read_kernel_log(&source, &ReadLimits::default())
                });
                let kernel_log = match tokio::time::timeout(opts.deadline, log).await {
                    Ok(Ok(Ok(log))) => Some(Box::new(log)),
                    other => {
                        if !kernel_log_warned {
                            let why = match other {
                                Ok(Ok(Err(e))) => e.to_string(),
                                _ => "the read did not finish in time".into(),
                            };
                            tracing::warn!(error = %why, "the recorder cannot read the kernel log; Xids are not recorded");
                            kernel_log_warned = true;
                        }
                        None
                    }
                };
                Tick::Sampled {
                    snapshot,
                    kernel_log,
                }
            }
            (tick, _) => tick,
        };
        if let Err(e) = recorder.record(tick) {
            tracing::warn!(error = %e, "cannot write the GPU history");
        }
    }
    if let Err(e) = recorder.flush() {
        tracing::warn!(error = %e, "cannot write the last minute of GPU history");
    }
}

/// One snapshot with a deadline; while an earlier call is still hung, ticks are skipped without
/// calling NVML again (blocked threads would pile up).
async fn sample_once(
    backend: &Arc<dyn GpuBackend>,
    hung: &Arc<AtomicBool>,
    deadline: Duration,
) -> Tick {
    if hung.load(Ordering::Acquire) {
        return Tick::Skipped(
            "an earlier NVML call has still not returned: the driver or a GPU is hung".into(),
        );
    }
    let b = backend.clone();
    let flag = hung.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let out = b.snapshot(GpuFilter::All);
        flag.store(false, Ordering::Release);
        out
    });
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(Ok(snapshot))) => Tick::Sampled {
            snapshot: Box::new(snapshot),
            kernel_log: None,
        },
        Ok(Ok(Err(e))) => Tick::Skipped(format!("NVML could not be read: {e}")),
        Ok(Err(join)) => Tick::Skipped(format!("the sampling task failed: {join}")),
        Err(_) => {
            // Set before checking, so a call finishing in between clears it again.
            hung.store(true, Ordering::Release);
            if task.is_finished() {
                hung.store(false, Ordering::Release);
            }
            Tick::Skipped(format!(
                "NVML did not answer within {deadline:?}: sample skipped (a GPU or the driver may be hung)"
            ))
        }
    }
}
