//! What the flight recorder's history adds to `get_gpu_health` (pure): a baseline for the rate rules
//! from a recorded sample (no two-sample wait), and rules only history allows — sustained throttling,
//! the corrected-ECC rate over 24 h, and the same Xid repeating on a GPU.

use std::collections::BTreeMap;

use super::aggregate::ALERT_REASONS;
use super::sample::{CounterId, baseline_device};
use super::store::{HistoryRead, Record};
use crate::gpu::{NodeSnapshot, NvmlReturn, ReadError};
use crate::health::{Finding, Rule, Severity};

/// Rate rules judge a window of at least this long (DCGM's watches judge about a minute).
pub const RATE_WINDOW_MS: i64 = 60_000;
/// A baseline older than this is not used (the previous call or a sampling window serves instead).
pub const MAX_BASELINE_AGE_MS: i64 = 5 * 60_000;
/// Sustained throttling: an alerting reason in at least this share of the samples ...
pub const SUSTAINED_SHARE: f64 = 0.5;
/// ... of the last this-many minutes ...
pub const SUSTAINED_WINDOW_MS: i64 = 10 * 60_000;
/// ... with at least this many samples in that window.
pub const SUSTAINED_MIN_SAMPLES: u32 = 5;
/// Corrected ECC errors in 24 h from which the rate is worth a warning (NVIDIA's Xid 92 "excessive
/// SBE interrupts" marks the same condition from the driver's side).
pub const SBE_PER_DAY_WARN: u64 = 100;
/// The same Xid on the same GPU this many times within 24 h counts as repeating.
pub const XID_REPEAT_COUNT: u32 = 3;

/// The newest recorded sample at least [`RATE_WINDOW_MS`] old (and at most
/// [`MAX_BASELINE_AGE_MS`]), as a snapshot baseline and its age.
pub fn baseline(
    read: &HistoryRead,
    now_ms: i64,
    current: &NodeSnapshot,
) -> Option<(NodeSnapshot, i64)> {
    let (t, gpus) = read.raw.iter().rev().find_map(|r| match r {
        Record::Sample { t, gpus, .. } if now_ms - t >= RATE_WINDOW_MS => Some((*t, gpus)),
        _ => None,
    })?;
    if now_ms - t > MAX_BASELINE_AGE_MS {
        return None;
    }
    fn not_kept<T>() -> Result<T, ReadError> {
        Err(ReadError::with_detail(
            NvmlReturn::NotSupported,
            "not kept in the GPU history",
        ))
    }
    Some((
        NodeSnapshot {
            driver_version: not_kept(),
            cuda_driver_version: not_kept(),
            nvml_version: not_kept(),
            device_count: current.device_count,
            devices: gpus.iter().map(baseline_device).collect(),
            pci_gpu_functions: not_kept(),
        },
        now_ms - t,
    ))
}

/// Findings of the history-only rules, per GPU index (pure).
pub fn findings(read: &HistoryRead, now_ms: i64) -> Vec<(u32, Finding)> {
    let mut out = Vec::new();
    out.extend(sustained_throttling(read, now_ms));
    out.extend(sbe_rate(read, now_ms));
    out.extend(repeated_xids(read, now_ms));
    out
}

fn sustained_throttling(read: &HistoryRead, now_ms: i64) -> Vec<(u32, Finding)> {
    // Per GPU: samples in the window, samples with an alerting reason, the reasons seen.
    let mut per_gpu: BTreeMap<u32, (u32, u32, u64)> = BTreeMap::new();
    for r in &read.raw {
        let Record::Sample { t, gpus, .. } = r else {
            continue;
        };
        if now_ms - t > SUSTAINED_WINDOW_MS {
            continue;
        }
        for s in gpus {
            let Some(reasons) = s.state.reasons else {
                continue;
            };
            let e = per_gpu.entry(s.index).or_default();
            e.0 += 1;
            if reasons & ALERT_REASONS != 0 {
                e.1 += 1;
                e.2 |= reasons & ALERT_REASONS;
            }
        }
    }
    per_gpu
        .into_iter()
        .filter(|(_, (n, hot, _))| *n >= SUSTAINED_MIN_SAMPLES && f64::from(*hot) >= f64::from(*n) * SUSTAINED_SHARE)
        .map(|(gpu, (n, hot, mask))| {
            let minutes = SUSTAINED_WINDOW_MS / 60_000;
            (
                gpu,
                Finding::new(
                    Rule::ClockEventsSustained,
                    Severity::Warn,
                    format!(
                        "GPU {gpu} was throttled by hardware, thermal or power-brake clock events in \
                         {hot} of {n} samples over the last {minutes} minutes"
                    ),
                )
                .with("throttled_samples", hot)
                .with("samples", n)
                .with("window_seconds", (SUSTAINED_WINDOW_MS / 1000) as u64)
                .with("clock_event_reasons_mask", format!("0x{mask:x}"))
                .action(
                    "Check cooling (fans, inlet temperature, airflow) and power delivery; \
                     get_gpu_timeline shows when it started.",
                ),
            )
        })
        .collect()
}

fn sbe_rate(read: &HistoryRead, now_ms: i64) -> Vec<(u32, Finding)> {
    let from = now_ms - 86_400_000;
    let mut deltas: BTreeMap<u32, u64> = BTreeMap::new();
    let first_raw = read.raw.iter().find_map(|r| match r {
        Record::Sample { t, .. } => Some(*t),
        _ => None,
    });
    for m in &read.minutes {
        if m.t < from || first_raw.is_some_and(|f| m.t + 60_000 > f) {
            continue;
        }
        for g in &m.gpus {
            *deltas.entry(g.index).or_default() +=
                g.deltas.get(CounterId::EccCorrected).copied().unwrap_or(0);
        }
    }
    let mut previous: BTreeMap<u32, u64> = BTreeMap::new();
    for r in &read.raw {
        let Record::Sample { gpus, .. } = r else {
            continue;
        };
        for s in gpus {
            let Some(&v) = s.counters.get(CounterId::EccCorrected) else {
                continue;
            };
            if let Some(p) = previous.insert(s.index, v) {
                *deltas.entry(s.index).or_default() += if v >= p { v - p } else { v };
            }
        }
    }
    deltas
        .into_iter()
        .filter(|(_, d)| *d >= SBE_PER_DAY_WARN)
        .map(|(gpu, d)| {
            (
                gpu,
                Finding::new(
                    Rule::EccSbeRate24h,
                    Severity::Warn,
                    format!("GPU {gpu} corrected {d} ECC errors in the last 24 h (threshold {SBE_PER_DAY_WARN})"),
                )
                .with("ecc_corrected_delta_24h", d)
                .with("threshold", SBE_PER_DAY_WARN)
                .action(
                    "Watch the remapped-row counters and Xid 63/64/92; a rising rate is a reason to \
                     plan a replacement. get_gpu_timeline shows when the errors came.",
                ),
            )
        })
        .collect()
}

fn repeated_xids(read: &HistoryRead, now_ms: i64) -> Vec<(u32, Finding)> {
    let from = now_ms - 86_400_000;
    let mut seen = std::collections::BTreeSet::new();
    let mut counts: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    let xids = read
        .minutes
        .iter()
        .flat_map(|m| m.xids.iter())
        .chain(read.raw.iter().flat_map(|r| match r {
            Record::Sample { xids, .. } => xids.as_slice(),
            _ => &[],
        }));
    for x in xids {
        let Some(gpu) = x.gpu else { continue };
        if x.unix_ms < from || !seen.insert((x.unix_ms, x.code, x.pci.clone())) {
            continue;
        }
        *counts.entry((gpu, x.code)).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n >= XID_REPEAT_COUNT)
        .map(|((gpu, code), n)| {
            let name = crate::xid::explain(code).mnemonic;
            (
                gpu,
                Finding::new(
                    Rule::XidRepeated,
                    Severity::Warn,
                    format!(
                        "Xid {code} ({name}) was logged {n} times for GPU {gpu} in the last 24 h"
                    ),
                )
                .with("xid", code)
                .with("count_24h", n)
                .action(
                    "A recurring Xid on one GPU points at that GPU's hardware rather than the \
                     workload: run analyze_xid_errors for its catalog action and plan a GPU reset \
                     or diagnostics (dcgmi diag) in a maintenance window.",
                ),
            )
        })
        .collect()
}
