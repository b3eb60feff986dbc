//! The recorder's flags (shared by `agent idle`, which records, and `agent serve`, which reads) and
//! the `agent idle` body.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gpu_fixture::parse_duration;

use super::store::StoreOptions;
use super::{LoopOptions, Recorder};
use crate::clock::SystemClock;
use crate::gpu::GpuBackend;
use crate::xid::LogSource;

/// Crash tests only: `agent idle` writes half of this raw record (1 = the first), then stops itself
/// with `SIGSTOP` so the test can `SIGKILL` it mid-record.
pub const STOP_MID_RECORD_ENV: &str = "AGENT_HISTORY_TEST_STOP_MID_RECORD";

/// `--sample-interval`, `--history-dir` and the retention flags.
#[derive(Clone, Debug, clap::Args)]
pub struct HistoryArgs {
    /// Where the flight recorder keeps GPU history (`agent idle` writes, `get_gpu_timeline` reads).
    /// Unset: no recorder.
    #[arg(long, env = "AGENT_HISTORY_DIR", global = true)]
    pub history_dir: Option<PathBuf>,

    /// How often `agent idle` samples every GPU (`500ms`, `10s`, `1m`).
    #[arg(long, env = "AGENT_SAMPLE_INTERVAL", default_value = super::DEFAULT_SAMPLE_INTERVAL,
          value_parser = parse_duration, global = true)]
    pub sample_interval: Duration,

    /// How long every sample is kept.
    #[arg(long, env = "AGENT_HISTORY_RAW_RETENTION", default_value = super::DEFAULT_RAW_RETENTION,
          value_parser = parse_duration, global = true)]
    pub history_raw_retention: Duration,

    /// How long one-minute aggregates are kept.
    #[arg(long, env = "AGENT_HISTORY_RETENTION", default_value = super::DEFAULT_RETENTION,
          value_parser = parse_duration, global = true)]
    pub history_retention: Duration,

    /// The most bytes the history may take; the oldest data is dropped first (set below the
    /// volume's size).
    #[arg(long, env = "AGENT_HISTORY_MAX_BYTES", default_value_t = super::DEFAULT_MAX_BYTES, global = true)]
    pub history_max_bytes: u64,
}

impl HistoryArgs {
    /// The store's settings, when a history directory is set.
    pub fn store_options(&self) -> Option<StoreOptions> {
        Some(StoreOptions {
            dir: self.history_dir.clone()?,
            raw_retention: self.history_raw_retention.min(self.history_retention),
            minute_retention: self.history_retention,
            max_bytes: self.history_max_bytes,
            interval: self.sample_interval,
        })
    }

    /// Checks values clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.sample_interval < Duration::from_millis(10) {
            return Err(format!(
                "--sample-interval {:?} is too short: use at least 10ms (the default is {})",
                self.sample_interval,
                super::DEFAULT_SAMPLE_INTERVAL
            ));
        }
        Ok(())
    }
}

/// `agent idle`: records until `shutdown` resolves (or only waits when no history directory is set).
pub async fn run_idle(
    backend: Arc<dyn GpuBackend>,
    kernel_log: Arc<dyn Fn() -> LogSource + Send + Sync>,
    args: &HistoryArgs,
    nvml_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let Some(store) = args.store_options() else {
        tracing::info!("no --history-dir: the flight recorder is off");
        shutdown.await;
        return Ok(());
    };
    let dir = store.dir.clone();
    let mut recorder = Recorder::open(store, Arc::new(SystemClock)).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the GPU history directory {}: {e}. Mount a writable volume there (the \
             operator mounts an emptyDir) or unset --history-dir",
            dir.display()
        )
    })?;
    if let Some(n) = std::env::var(STOP_MID_RECORD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tracing::warn!(
            record = n,
            "{STOP_MID_RECORD_ENV} is set: this process stops halfway through that record (a crash test)"
        );
        recorder.stop_mid_record(n);
    }
    tracing::info!(dir = %dir.display(), interval = ?args.sample_interval, "flight recorder started");
    let opts = LoopOptions {
        interval: args.sample_interval,
        deadline: nvml_timeout.min(args.sample_interval.max(Duration::from_secs(2))),
        kernel_log: Some(kernel_log),
    };
    super::run(recorder, backend, opts, shutdown).await;
    Ok(())
}
