//! One-minute aggregates: per GPU, min/max/mean/last of every gauge, counter deltas and last values,
//! each state value folded as its table in [`super::sample`] says, and how many samples found the GPU
//! lost. The metric lists live in `sample.rs`; this file only iterates them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::sample::{CounterMap, GaugeMap, GpuSample, GpuState, XidSample};

/// One minute of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinuteAggregate {
    /// Start of the minute (ms since the epoch, a multiple of 60 000).
    pub t: i64,
    /// Samples taken in the minute.
    pub n: u32,
    /// Ticks skipped in the minute (hung or failing NVML).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u32,
    pub gpus: Vec<GpuMinute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids: Vec<XidSample>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `[min, max, mean, last]`.
pub type Summary = [f64; 4];

/// One GPU's minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuMinute {
    #[serde(rename = "i")]
    pub index: u32,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Arc<str>>,
    /// Samples that found the GPU lost.
    #[serde(rename = "lost", default, skip_serializing_if = "is_zero")]
    pub lost_samples: u32,
    #[serde(rename = "g", default, skip_serializing_if = "GaugeMap::is_empty")]
    pub gauges: GaugeMap<Summary>,
    /// Counter values at the minute's last sample.
    #[serde(rename = "c", default, skip_serializing_if = "CounterMap::is_empty")]
    pub counters: CounterMap,
    /// Counter increments within the minute (a reset counts its new value); zero deltas left out.
    #[serde(rename = "d", default, skip_serializing_if = "CounterMap::is_empty")]
    pub deltas: CounterMap,
    /// Each state value folded as its table says ([`GpuState`]): the union of the throttle reasons,
    /// the last link and threshold, whether any sample saw a remap pending.
    #[serde(flatten)]
    pub state: GpuState,
    /// Samples with any alerting throttle reason (HW slowdown, thermal, power brake).
    #[serde(rename = "ra", default, skip_serializing_if = "is_zero")]
    pub alert_throttled_samples: u32,
}

/// Throttle reasons worth an alert: HW slowdown, SW/HW thermal, HW power brake.
pub const ALERT_REASONS: u64 = 0x8 | 0x20 | 0x40 | 0x80;

#[derive(Default)]
struct GaugeAcc {
    min: f64,
    max: f64,
    sum: f64,
    n: u32,
    last: f64,
}

impl GaugeAcc {
    fn push(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.n += 1;
        self.last = v;
    }
}

/// Folds samples into minutes; hands a minute back once a sample of a later minute arrives.
#[derive(Default)]
pub struct Aggregator {
    minute: Option<i64>,
    n: u32,
    skipped: u32,
    gpus: BTreeMap<u32, (GpuMinute, GaugeMap<GaugeAcc>)>,
    xids: Vec<XidSample>,
    /// Counter values of the previous sample per GPU, for deltas across minute boundaries.
    previous: BTreeMap<u32, CounterMap>,
}

impl Aggregator {
    /// Adds a sample taken at `t`; returns the previous minute when `t` starts a new one.
    pub fn push(
        &mut self,
        t: i64,
        gpus: &[GpuSample],
        xids: &[XidSample],
    ) -> Option<MinuteAggregate> {
        let done = self.roll(t);
        self.n += 1;
        self.xids.extend_from_slice(xids);
        for s in gpus {
            let (m, accs) = self.gpus.entry(s.index).or_default();
            m.index = s.index;
            if s.uuid.is_some() {
                m.uuid = s.uuid.clone();
            }
            if s.lost.is_some() {
                m.lost_samples += 1;
                continue;
            }
            for (g, v) in s.gauges.iter() {
                accs.entry(g).push(*v);
            }
            let prev = self.previous.entry(s.index).or_default();
            for (c, v) in s.counters.iter() {
                let delta = match prev.get(c) {
                    Some(p) if v >= p => v - p,
                    Some(_) => *v,
                    None => 0,
                };
                if delta > 0 {
                    *m.deltas.entry(c) += delta;
                }
                m.counters.insert(c, *v);
                prev.insert(c, *v);
            }
            m.state.fold(&s.state);
            if s.state.reasons.is_some_and(|r| r & ALERT_REASONS != 0) {
                m.alert_throttled_samples += 1;
            }
        }
        done
    }

    /// Counts a skipped tick at `t`.
    pub fn skip(&mut self, t: i64) -> Option<MinuteAggregate> {
        let done = self.roll(t);
        self.skipped += 1;
        done
    }

    /// The minute in progress, if it has anything (at shutdown).
    pub fn flush(&mut self) -> Option<MinuteAggregate> {
        self.take()
    }

    fn roll(&mut self, t: i64) -> Option<MinuteAggregate> {
        let minute = t.div_euclid(60_000) * 60_000;
        let done = match self.minute {
            Some(m) if m != minute => self.take(),
            _ => None,
        };
        self.minute = Some(minute);
        done
    }

    fn take(&mut self) -> Option<MinuteAggregate> {
        let t = self.minute?;
        if self.n == 0 && self.skipped == 0 {
            return None;
        }
        let gpus = std::mem::take(&mut self.gpus)
            .into_values()
            .map(|(mut m, accs)| {
                m.gauges = accs
                    .iter()
                    .filter(|(_, a)| a.n > 0)
                    .map(|(g, a)| (g, [a.min, a.max, a.sum / f64::from(a.n), a.last]))
                    .collect();
                m
            })
            .collect();
        let agg = MinuteAggregate {
            t,
            n: self.n,
            skipped: self.skipped,
            gpus,
            xids: std::mem::take(&mut self.xids),
        };
        self.n = 0;
        self.skipped = 0;
        Some(agg)
    }
}
