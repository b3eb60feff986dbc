//! The health report: what `get_gpu_health` returns as `structuredContent`. Plain serializable data
//! with no `null` anywhere (absent optional values are left out), so one JSON schema describes it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::rule::Rule;
pub use crate::verdict::Verdict;

/// How bad one finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action needed.
    Info,
    /// Degraded or at risk: plan an action.
    Warn,
    /// Broken or untrustworthy: act now.
    Fail,
}

impl Verdict {
    /// The verdict a set of findings earns: the worst severity among them.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Verdict {
        findings
            .into_iter()
            .map(|f| match f.severity {
                Severity::Info => Verdict::Pass,
                Severity::Warn => Verdict::Warn,
                Severity::Fail => Verdict::Fail,
            })
            .max()
            .unwrap_or(Verdict::Pass)
    }
}

/// One number or word of evidence. Units live in the evidence key (`temperature_c`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum EvidenceValue {
    /// A count or other whole number.
    Integer(i64),
    /// A measured value (watts, seconds, percent).
    Number(f64),
    /// A flag.
    Bool(bool),
    /// A name, list, or hex mask.
    Text(String),
}

impl From<u64> for EvidenceValue {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or_else(
            |_| EvidenceValue::Text(v.to_string()),
            EvidenceValue::Integer,
        )
    }
}

impl From<u32> for EvidenceValue {
    fn from(v: u32) -> Self {
        EvidenceValue::Integer(i64::from(v))
    }
}

impl From<f64> for EvidenceValue {
    /// Rounded to 3 decimals; a non-finite value becomes text (JSON has no NaN, and `null` is banned).
    fn from(v: f64) -> Self {
        if v.is_finite() {
            EvidenceValue::Number((v * 1000.0).round() / 1000.0)
        } else {
            EvidenceValue::Text(v.to_string())
        }
    }
}

impl From<bool> for EvidenceValue {
    fn from(v: bool) -> Self {
        EvidenceValue::Bool(v)
    }
}

impl From<String> for EvidenceValue {
    fn from(v: String) -> Self {
        EvidenceValue::Text(v)
    }
}

impl From<&str> for EvidenceValue {
    fn from(v: &str) -> Self {
        EvidenceValue::Text(v.to_string())
    }
}

/// The numbers behind a finding, by name (units in the names), in a stable order.
pub type Evidence = BTreeMap<String, EvidenceValue>;

/// One result of one rule: what is wrong, the numbers that show it, and what to do.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Finding {
    /// The rule that produced it (`pcie.replay_rate`).
    pub check: Rule,
    pub severity: Severity,
    /// One sentence a human acts on.
    pub message: String,
    /// Values, thresholds, window and counter deltas behind the verdict.
    pub evidence: Evidence,
    /// What the operator should do; absent when nothing needs doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub action: Option<String>,
}

impl Finding {
    /// A finding without evidence or action yet (add them with [`Finding::with`] and [`Finding::action`]).
    pub fn new(check: Rule, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            check,
            severity,
            message: message.into(),
            evidence: Evidence::new(),
            action: None,
        }
    }

    /// Adds one piece of evidence.
    pub fn with(mut self, key: &str, value: impl Into<EvidenceValue>) -> Finding {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    /// Sets what the operator should do.
    pub fn action(mut self, action: impl Into<String>) -> Finding {
        self.action = Some(action.into());
        self
    }
}

/// A rule that could not be run, and why: "not checked" is never reported as "fine" or as 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NotEvaluated {
    pub check: Rule,
    /// Why (the NVML error for the value the rule needs, or the missing input).
    pub reason: String,
}

/// The health of one GPU.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GpuHealth {
    /// NVML index.
    pub index: u32,
    /// Absent when NVML could not read it (a lost GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub uuid: Option<String>,
    /// Product name; absent when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub name: Option<String>,
    /// NVML form, `00000000:3B:00.0`; absent when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub pci_bus_id: Option<String>,
    /// Worst severity among `findings`.
    pub verdict: Verdict,
    /// Most severe first.
    pub findings: Vec<Finding>,
    pub not_evaluated: Vec<NotEvaluated>,
}

/// Checks about the node as a whole (GPU count, Xids not tied to a GPU, missing baseline).
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct NodeHealth {
    /// Worst severity among `findings`.
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub not_evaluated: Vec<NotEvaluated>,
}

/// The passive health of a node's GPUs, in the manner of DCGM's health watches.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct HealthReport {
    /// Worst of the node's and every GPU's verdict.
    pub verdict: Verdict,
    /// One line: the verdict and the GPUs that need attention.
    pub summary: String,
    /// Seconds between the baseline and the current snapshot the rate rules used; 0 without one.
    pub window_seconds: f64,
    /// Rate rules that ran (empty without a baseline).
    pub rate_rules_evaluated: Vec<Rule>,
    /// GPUs NVML enumerates on the node (the report may cover fewer when filtered).
    pub device_count: u32,
    /// NVIDIA driver version; absent when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub driver_version: Option<String>,
    pub node: NodeHealth,
    /// In NVML index order.
    pub gpus: Vec<GpuHealth>,
}
