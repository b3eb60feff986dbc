//! What the analysis is asked: the GPUs to attribute Xids to and the tool's optional arguments. Its
//! own room so the analysis and the coverage block both read it without importing each other.

use super::parse::PciLocation;

/// `max_events` when the caller gives none.
pub const DEFAULT_MAX_EVENTS: u32 = 200;
/// The largest `max_events` honoured.
pub const MAX_EVENTS_LIMIT: u32 = 10_000;

/// A GPU as the snapshot knows it: what Xids are attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuIdentity {
    pub index: u32,
    pub uuid: Option<String>,
    /// `None` when NVML could not read the GPU's PCI info.
    pub pci: Option<PciLocation>,
}

/// The tool's optional arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Only Xids logged in the last this-many seconds.
    pub since_seconds: Option<u64>,
    /// Length of the `events` list (default [`DEFAULT_MAX_EVENTS`], at most [`MAX_EVENTS_LIMIT`]).
    pub max_events: Option<u32>,
    /// Only Xids of the GPU with this NVML index.
    pub gpu_index: Option<u32>,
}

impl AnalyzeOptions {
    /// The `events` list's length: `max_events`, or the default, capped at [`MAX_EVENTS_LIMIT`].
    pub fn events_limit(&self) -> u32 {
        self.max_events
            .unwrap_or(DEFAULT_MAX_EVENTS)
            .min(MAX_EVENTS_LIMIT)
    }

    /// The start of the `since_seconds` window for a clock reading `now` (µs since the epoch).
    pub fn window_start(&self, now_unix_micros: i64) -> Option<i64> {
        self.since_seconds.map(|s| {
            now_unix_micros.saturating_sub(
                i64::try_from(s)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
            )
        })
    }
}
