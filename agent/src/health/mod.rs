//! Passive GPU health in the manner of DCGM's health watches, as pure functions over snapshots: the
//! engine behind `get_gpu_health`. Rules and thresholds follow `gpu-health.md`; a value NVML cannot
//! give is reported as "not evaluated", never scored as 0.

pub mod pcie;
pub mod report;
pub mod rule;
mod rules;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::gpu::{DeviceSnapshot, NodeSnapshot};

pub use report::{
    Evidence, EvidenceValue, Finding, GpuHealth, HealthReport, NodeHealth, NotEvaluated, Severity,
    Verdict,
};
pub use rule::Rule;

use rules::{Out, Window};

/// An earlier snapshot of the same node and how long before the current one it was taken: what rate
/// rules (PCIe replays, NVLink errors, violation time) compare against.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub snapshot: NodeSnapshot,
    /// Time between this snapshot and the current one.
    pub elapsed: Duration,
}

/// An Xid seen in the kernel log, summarised per GPU and code by the Xid analysis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedXid {
    /// NVML index of the GPU the Xid's PCI address maps to; `None` when it maps to none.
    pub gpu_index: Option<u32>,
    pub code: u32,
    /// How many times it was seen (entries for the same GPU and code are summed).
    pub count: u32,
    /// When it was last seen, as shown to the user (RFC 3339 UTC sorts correctly when entries merge).
    pub last_seen: String,
}

/// Tunables of the rules that have no fixed threshold in the reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluateOptions {
    /// GPU utilization (%) from which a PCIe generation below the maximum counts as a fault (idle
    /// GPUs drop the generation to save power).
    pub busy_utilization_percent: u32,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            busy_utilization_percent: 50,
        }
    }
}

/// Judges the node's GPUs: absolute rules on `current`, rate rules against `baseline` when given, and
/// the Xid rules on `xids` (Xids of GPUs not in `current` are ignored when `current` is filtered).
pub fn evaluate(
    current: &NodeSnapshot,
    baseline: Option<&Baseline>,
    xids: &[ObservedXid],
    opts: &EvaluateOptions,
) -> HealthReport {
    let mut node = Out::default();
    rules::node::check_count(current, &mut node);
    let millis = baseline
        .map(|b| u64::try_from(b.elapsed.as_millis()).unwrap_or(u64::MAX))
        .filter(|&ms| ms > 0);
    let zero_window = baseline.is_some() && millis.is_none();
    let baseline = baseline.filter(|_| millis.is_some());
    if baseline.is_none() {
        node.push(no_baseline_finding(zero_window));
    }
    let mut xid_groups = rules::xid::group(xids);
    let mut rates_run = std::collections::BTreeSet::new();
    let mut gpus = Vec::with_capacity(current.devices.len());
    for dev in &current.devices {
        let window = match (baseline, millis) {
            (Some(b), Some(ms)) => window_for(dev, &b.snapshot, ms),
            _ => Window::Missing,
        };
        let mut out = Out::default();
        rules::evaluate_gpu(dev, window, opts, &mut out);
        if let Some(codes) = xid_groups.remove(&Some(dev.index)) {
            out.findings
                .extend(rules::xid::findings(Some(dev.index), &codes));
        }
        rates_run.extend(out.rates_run.iter().copied());
        gpus.push(gpu_health(dev, out));
    }
    let filtered = current.devices.len() < current.device_count as usize;
    for (index, codes) in xid_groups {
        if index.is_none() || !filtered {
            node.findings.extend(rules::xid::findings(index, &codes));
        }
    }
    node.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let node = NodeHealth {
        verdict: Verdict::of(&node.findings),
        findings: node.findings,
        not_evaluated: node.not_evaluated,
    };
    let verdict = gpus
        .iter()
        .map(|g| g.verdict)
        .fold(node.verdict, Verdict::max);
    let window_seconds = match (baseline, millis) {
        (Some(_), Some(ms)) => rules::seconds(ms),
        _ => 0.0,
    };
    HealthReport {
        verdict,
        summary: summary(verdict, &node, &gpus, current.device_count, window_seconds),
        window_seconds,
        rate_rules_evaluated: Rule::RATE_RULES
            .into_iter()
            .filter(|r| rates_run.contains(r))
            .collect(),
        device_count: current.device_count,
        driver_version: current.driver_version.as_ref().ok().cloned(),
        node,
        gpus,
    }
}

/// Adds findings from rules that run elsewhere (the flight recorder's history) to GPUs of `report`,
/// by NVML index, and recomputes the verdicts and the summary.
pub fn add_findings(report: &mut HealthReport, findings: Vec<(u32, Finding)>) {
    if findings.is_empty() {
        return;
    }
    for (index, finding) in findings {
        if let Some(g) = report.gpus.iter_mut().find(|g| g.index == index) {
            g.findings.push(finding);
            g.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
            g.verdict = Verdict::of(&g.findings);
        }
    }
    report.verdict = report
        .gpus
        .iter()
        .map(|g| g.verdict)
        .fold(report.node.verdict, Verdict::max);
    report.summary = summary(
        report.verdict,
        &report.node,
        &report.gpus,
        report.device_count,
        report.window_seconds,
    );
}

fn no_baseline_finding(zero_window: bool) -> Finding {
    let why = if zero_window {
        "the baseline snapshot was taken 0 s before the current one"
    } else {
        "there is no earlier snapshot to compare with"
    };
    Finding::new(
        Rule::RatesNoBaseline,
        Severity::Info,
        format!(
            "Rate rules were not evaluated because {why}: PCIe replay rate, NVLink CRC/replay/recovery \
             rates and thermal/power violation time need two readings."
        ),
    )
    .with(
        "rules_not_evaluated",
        Rule::RATE_RULES.map(|r| r.id()).join(", "),
    )
    .action(
        "Call get_gpu_health again (it compares with the previous reading) or pass `window_seconds` \
         (e.g. 10) to sample twice.",
    )
}

/// The same GPU in the baseline, matched by UUID (by index only when the UUID is unreadable now).
fn window_for<'a>(dev: &DeviceSnapshot, before: &'a NodeSnapshot, millis: u64) -> Window<'a> {
    let by_index = before.devices.iter().find(|b| b.index == dev.index);
    let found = match &dev.uuid {
        Ok(uuid) => match before.devices.iter().find(|b| b.uuid.as_ref() == Ok(uuid)) {
            Some(b) => Some(b),
            None if by_index.is_some_and(|b| b.uuid.is_ok()) => {
                return Window::Unusable(
                    "the baseline's GPU at this index has a different UUID (GPUs were re-enumerated); \
                     call again for a fresh baseline",
                );
            }
            None => None,
        },
        Err(_) => by_index,
    };
    match found {
        Some(before) => Window::Ready { before, millis },
        None => Window::Unusable(
            "this GPU is not in the baseline snapshot (or its identity was unreadable there)",
        ),
    }
}

fn gpu_health(dev: &DeviceSnapshot, mut out: Out) -> GpuHealth {
    out.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    GpuHealth {
        index: dev.index,
        uuid: dev.uuid.as_ref().ok().cloned(),
        name: dev.name.as_ref().ok().cloned(),
        pci_bus_id: dev.pci.as_ref().ok().map(|p| p.bus_id.nvml_bus_id()),
        verdict: Verdict::of(&out.findings),
        findings: out.findings,
        not_evaluated: out.not_evaluated,
    }
}

/// One line: the verdict, the GPUs (and node checks) that are not PASS with their rules, the rest.
fn summary(
    verdict: Verdict,
    node: &NodeHealth,
    gpus: &[GpuHealth],
    device_count: u32,
    window_seconds: f64,
) -> String {
    let rules_of = |findings: &[Finding]| {
        let mut ids: Vec<String> = Vec::new();
        for f in findings.iter().filter(|f| f.severity > Severity::Info) {
            let id = f.check.id();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.join(", ")
    };
    let mut parts = Vec::new();
    if node.verdict != Verdict::Pass {
        parts.push(format!(
            "node {} ({})",
            node.verdict.as_str(),
            rules_of(&node.findings)
        ));
    }
    let mut bad: Vec<&GpuHealth> = gpus.iter().filter(|g| g.verdict != Verdict::Pass).collect();
    bad.sort_by_key(|g| (std::cmp::Reverse(g.verdict), g.index));
    for g in &bad {
        parts.push(format!(
            "GPU {} {} ({})",
            g.index,
            g.verdict.as_str(),
            rules_of(&g.findings)
        ));
    }
    let passing = gpus.len() - bad.len();
    let checked = if gpus.len() == device_count as usize {
        format!("{} GPU(s)", gpus.len())
    } else {
        format!("{} of {device_count} GPU(s)", gpus.len())
    };
    let rates = if window_seconds > 0.0 {
        format!("rates over {window_seconds:.1} s")
    } else {
        "rate rules not evaluated (no baseline)".to_string()
    };
    if parts.is_empty() {
        return format!(
            "{}: {checked} checked, no problems found; {rates}.",
            verdict.as_str()
        );
    }
    format!(
        "{}: {}; {passing} of {checked} PASS; {rates}.",
        verdict.as_str(),
        parts.join("; ")
    )
}
