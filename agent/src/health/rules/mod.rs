//! The rules, one file per area of the GPU. Each reads one GPU's snapshot (and, for rate rules, the
//! same GPU's earlier snapshot) and appends findings or "not evaluated" entries to a [`Out`].

mod clocks;
mod device;
mod memory;
pub(super) mod node;
mod nvlink;
mod pcie;
mod thermal;
pub(super) mod xid;

use std::collections::BTreeSet;
use std::fmt::Display;

use crate::gpu::{DeviceSnapshot, Reading};

use super::EvaluateOptions;
use super::report::{Finding, NotEvaluated};
use super::rule::Rule;

/// What rate rules compare against for one GPU.
#[derive(Clone, Copy, Debug)]
pub(super) enum Window<'a> {
    /// No baseline was given: rate rules are reported once, at node level.
    Missing,
    /// A baseline was given but cannot serve this GPU (reason).
    Unusable(&'a str),
    /// The same GPU, `millis` milliseconds earlier.
    Ready {
        before: &'a DeviceSnapshot,
        millis: u64,
    },
}

/// The window length in seconds, for evidence and messages.
pub(super) fn seconds(millis: u64) -> f64 {
    millis as f64 / 1000.0
}

/// Whether `count` events in `millis` exceed `per_minute` events per minute (strictly).
pub(super) fn exceeds_per_minute(count: u64, per_minute: u64, millis: u64) -> bool {
    u128::from(count) * 60_000 > u128::from(per_minute) * u128::from(millis)
}

/// Whether `count` events in `millis` reach at least `per_minute` events per minute.
pub(super) fn reaches_per_minute(count: u64, per_minute: u64, millis: u64) -> bool {
    count > 0 && u128::from(count) * 60_000 >= u128::from(per_minute) * u128::from(millis)
}

/// How much a cumulative counter grew over the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Growth {
    /// Events in the window; when the counter was reset, a lower bound (the count since the reset).
    pub count: u64,
    /// The counter went backwards (GPU reset, driver reload, or rollover): `(before, after)`.
    pub reset: Option<(u64, u64)>,
}

impl Growth {
    /// The growth from `before` to `after`.
    pub fn between(before: u64, after: u64) -> Growth {
        match after.checked_sub(before) {
            Some(count) => Growth { count, reset: None },
            None => Growth {
                count: after,
                reset: Some((before, after)),
            },
        }
    }
}

/// One GPU's findings and skipped rules, collected while the rules run.
#[derive(Debug, Default)]
pub(super) struct Out {
    pub findings: Vec<Finding>,
    pub not_evaluated: Vec<NotEvaluated>,
    /// Rate rules that ran on this GPU.
    pub rates_run: BTreeSet<Rule>,
}

impl Out {
    /// Records a finding.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Records that `check` could not run, and why.
    pub fn skip(&mut self, check: Rule, reason: impl Display) {
        self.not_evaluated.push(NotEvaluated {
            check,
            reason: reason.to_string(),
        });
    }

    /// The value `check` needs, or `None` after recording why it is missing.
    pub fn need<'r, T>(&mut self, check: Rule, what: &str, r: &'r Reading<T>) -> Option<&'r T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.skip(check, format!("{what}: {e}"));
                None
            }
        }
    }

    /// For a rate rule: the growth of a counter over the window when the rule fires per `fires`
    /// (given the count and window ms). Records why when the rule cannot be judged; a counter reset
    /// is judged on the count since the reset (a lower bound) and reported as not evaluated only
    /// when that lower bound does not fire.
    pub fn growth_firing(
        &mut self,
        check: Rule,
        what: &str,
        window: Window<'_>,
        read: impl Fn(&DeviceSnapshot) -> &Reading<u64>,
        now: &DeviceSnapshot,
        fires: impl Fn(u64, u64) -> bool,
    ) -> Option<(Growth, u64)> {
        let (before, millis) = match window {
            Window::Missing => return None,
            Window::Unusable(reason) => {
                self.skip(check, reason);
                return None;
            }
            Window::Ready { before, millis } => (before, millis),
        };
        let after = self.need(check, what, read(now))?;
        let before = self.need(check, &format!("{what} (baseline)"), read(before))?;
        self.rates_run.insert(check);
        let growth = Growth::between(*before, *after);
        if fires(growth.count, millis) {
            return Some((growth, millis));
        }
        if let Some((b, a)) = growth.reset {
            self.skip(
                check,
                format!(
                    "{what} went backwards from {b} to {a} during the window (GPU reset, driver \
                     reload or counter rollover); the {a} counted since are within the threshold \
                     but the full rate is unknown: call again for a clean window"
                ),
            );
        }
        None
    }
}

/// Runs every per-GPU rule on one GPU.
pub(super) fn evaluate_gpu(
    dev: &DeviceSnapshot,
    window: Window<'_>,
    opts: &EvaluateOptions,
    out: &mut Out,
) {
    if !device::reachable(dev, out) {
        return;
    }
    thermal::check(dev, window, out);
    thermal::check_power(dev, window, out);
    clocks::check(dev, out);
    memory::check_ecc(dev, out);
    memory::check_retired_pages(dev, out);
    memory::check_row_remap(dev, out);
    pcie::check(dev, window, opts, out);
    nvlink::check(dev, window, out);
    device::check_inforom(dev, out);
    device::check_recovery_action(dev, out);
}

/// "GPU 4" with its UUID when known, for messages and actions.
pub(super) fn gpu_label(dev: &DeviceSnapshot) -> String {
    match &dev.uuid {
        Ok(uuid) => format!("GPU {} ({uuid})", dev.index),
        Err(_) => format!("GPU {}", dev.index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_minute_comparisons_scale_to_the_window() {
        // 31 per minute allowed: 31 in 60 s is fine, 32 is not; 16 in 30 s exceeds 15.5.
        assert!(!exceeds_per_minute(31, 31, 60_000));
        assert!(exceeds_per_minute(32, 31, 60_000));
        assert!(exceeds_per_minute(16, 31, 30_000));
        assert!(!exceeds_per_minute(15, 31, 30_000));
        // ≥ 1 per minute: 1 in 60 s reaches it, 1 in 61 s does not, 0 never does.
        assert!(reaches_per_minute(1, 1, 60_000));
        assert!(!reaches_per_minute(1, 1, 61_000));
        assert!(!reaches_per_minute(0, 1, 0));
        assert!(reaches_per_minute(2, 1, 120_000));
    }

    #[test]
    fn counter_growth_and_resets() {
        assert_eq!(
            Growth::between(10, 15),
            Growth {
                count: 5,
                reset: None
            }
        );
        assert_eq!(
            Growth::between(15, 3),
            Growth {
                count: 3,
                reset: Some((15, 3))
            }
        );
        assert_eq!(Growth::between(u64::MAX, u64::MAX).count, 0);
    }
}
