//! Tests of the health engine: built-in scenarios end to end through the mock backend, and every
//! rule's boundaries on hand-edited snapshots.

mod clocks_power;
mod device_xid;
mod memory;
mod nvlink;
mod pcie;
mod scenarios;
mod thermal;

use std::time::Duration;

use gpu_fixture::Fixture;

use super::*;
use crate::gpu::mock::MockBackend;
use crate::gpu::{DataSource, GpuFilter, NvmlReturn, ReadError};

/// The mock backend over a built-in scenario.
fn backend(name: &str) -> MockBackend {
    MockBackend::new(
        Fixture::builtin(name).expect("built-in scenario exists"),
        DataSource::MockScenario(name.into()),
    )
}

/// The mock backend over a fixture given as YAML.
fn backend_yaml(yaml: &str) -> MockBackend {
    MockBackend::new(
        Fixture::from_yaml(yaml).expect("test fixture is valid"),
        DataSource::MockFixture("test.yaml".into()),
    )
}

/// The snapshot `secs` seconds after the backend started (deterministic counters).
fn snap_at(b: &MockBackend, secs: u64) -> NodeSnapshot {
    b.snapshot_at(GpuFilter::All, Duration::from_secs(secs))
        .expect("mock snapshot")
}

/// A healthy H100 node at t = 0.
fn healthy() -> NodeSnapshot {
    snap_at(&backend("healthy"), 0)
}

/// The healthy node with GPU 0 changed by `edit`.
fn edited(edit: impl FnOnce(&mut DeviceSnapshot)) -> NodeSnapshot {
    let mut s = healthy();
    edit(&mut s.devices[0]);
    s
}

/// GPU 0's findings on the healthy node changed by `edit`, as (rule, severity).
fn gpu0(edit: impl FnOnce(&mut DeviceSnapshot)) -> Vec<(Rule, Severity)> {
    rules_of(&eval(&edited(edit)), 0)
}

/// Evaluates without baseline or Xids.
fn eval(s: &NodeSnapshot) -> HealthReport {
    evaluate(s, None, &[], &EvaluateOptions::default())
}

/// Evaluates `after` against `before`, `secs` seconds apart.
fn eval_window(before: &NodeSnapshot, after: &NodeSnapshot, secs: u64) -> HealthReport {
    let baseline = Baseline {
        snapshot: before.clone(),
        elapsed: Duration::from_secs(secs),
    };
    evaluate(after, Some(&baseline), &[], &EvaluateOptions::default())
}

/// A scenario evaluated over a `secs`-second window of its own growing counters.
fn eval_scenario_window(name: &str, secs: u64) -> HealthReport {
    let b = backend(name);
    eval_window(&snap_at(&b, 0), &snap_at(&b, secs), secs)
}

/// The GPU's findings as (rule, severity), in report order.
fn rules_of(r: &HealthReport, gpu: usize) -> Vec<(Rule, Severity)> {
    r.gpus[gpu]
        .findings
        .iter()
        .map(|f| (f.check, f.severity))
        .collect()
}

/// The GPU's finding for `rule`, which must exist.
fn finding(r: &HealthReport, gpu: usize, rule: Rule) -> &Finding {
    r.gpus[gpu]
        .findings
        .iter()
        .find(|f| f.check == rule)
        .unwrap_or_else(|| {
            panic!(
                "GPU {gpu} has no {rule} finding: {:#?}",
                r.gpus[gpu].findings
            )
        })
}

/// Whether the GPU has a finding for `rule`.
fn has(r: &HealthReport, gpu: usize, rule: Rule) -> bool {
    r.gpus[gpu].findings.iter().any(|f| f.check == rule)
}

/// The GPU's "not evaluated" reason for `rule`, which must exist.
fn skipped(r: &HealthReport, gpu: usize, rule: Rule) -> &str {
    r.gpus[gpu]
        .not_evaluated
        .iter()
        .find(|n| n.check == rule)
        .map(|n| n.reason.as_str())
        .unwrap_or_else(|| panic!("GPU {gpu}: {rule} was evaluated: {:#?}", r.gpus[gpu]))
}

/// An evidence value as JSON, for compact assertions.
fn ev(f: &Finding, key: &str) -> serde_json::Value {
    serde_json::to_value(
        f.evidence
            .get(key)
            .unwrap_or_else(|| panic!("no evidence {key:?} in {f:#?}")),
    )
    .expect("evidence serializes")
}

/// An NVML error reading.
fn err<T>(code: NvmlReturn) -> Result<T, ReadError> {
    Err(ReadError::new(code))
}

/// Checks that every GPU other than `except` passes with no finding above info.
fn others_pass(r: &HealthReport, except: &[usize]) {
    for (i, g) in r.gpus.iter().enumerate() {
        if !except.contains(&i) {
            assert_eq!(g.verdict, Verdict::Pass, "GPU {i}: {:#?}", g.findings);
            assert!(g.findings.iter().all(|f| f.severity == Severity::Info));
        }
    }
}
