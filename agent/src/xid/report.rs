//! The Xid analysis result: the typed output of `analyze_xid_errors` (MCP `structuredContent`).
//!
//! Units are in field names; optional fields are absent rather than `null`; times are RFC 3339 UTC.

use schemars::JsonSchema;
use serde::Serialize;

use super::catalog::{ActionBucket, Severity};
use super::detail::NvlinkDetail;
use super::scan::SourceUsed;

/// The health tool's PASS/WARN/FAIL, shared so both tools judge alike.
pub use crate::verdict::Verdict;

/// The verdict an Xid severity earns: info → PASS, warning/unknown → WARN, error/critical → FAIL.
pub fn verdict_of(severity: Severity) -> Verdict {
    match severity {
        Severity::Info => Verdict::Pass,
        Severity::Warning | Severity::Unknown => Verdict::Warn,
        Severity::Error | Severity::Critical => Verdict::Fail,
    }
}

/// The concrete step an operator should take, ordered from least to most disruptive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecommendedAction {
    None,
    Monitor,
    InvestigateApplication,
    RestartApplication,
    ConsultCatalog,
    ReportIssue,
    UpdateSoftware,
    RestartFabricManager,
    #[serde(rename = "DRAIN_P2P")]
    DrainP2p,
    ResetGpu,
    DrainAndReset,
    RestartVm,
    RunFieldDiagnostics,
    CheckMechanicals,
    RebootNode,
    ReplaceGpu,
}

impl RecommendedAction {
    /// The step in plain language.
    pub fn instruction(self) -> &'static str {
        match self {
            Self::None => "No action needed.",
            Self::Monitor => "No action now; watch the GPU's error counters and the kernel log.",
            Self::InvestigateApplication => {
                "Debug the application that hit the error (pid and process name in the events): compute-sanitizer, cuda-gdb."
            }
            Self::RestartApplication => {
                "Restart the affected application; the GPU stays in service."
            }
            Self::ConsultCatalog => {
                "Look the code up in NVIDIA's Xid catalog for the installed driver version."
            }
            Self::ReportIssue => {
                "Collect `nvidia-bug-report.sh` output and open a support case with NVIDIA or the system vendor."
            }
            Self::UpdateSoftware => {
                "Update the GPU driver and firmware to compatible, current versions."
            }
            Self::RestartFabricManager => {
                "Restart the NVIDIA fabric manager (`systemctl restart nvidia-fabricmanager`) on NVSwitch systems."
            }
            Self::DrainP2p => {
                "Stop peer-to-peer users of the GPU and drop UVM persistence, then query the recovery action again."
            }
            Self::ResetGpu => {
                "Cordon the node, stop the GPU's workloads and reset the GPU (`nvidia-smi -r -i <gpu>`); reboot the node if the reset fails."
            }
            Self::DrainAndReset => {
                "Drain the GPU's workloads (cordon and drain the node), then reset the GPU so pending repairs take effect."
            }
            Self::RestartVm => "Restart the VM that owns the GPU.",
            Self::RunFieldDiagnostics => {
                "Drain the GPU and run DCGM diagnostics (`dcgmi diag -r 3`), then NVIDIA field diagnostics; replace it if they fail."
            }
            Self::CheckMechanicals => {
                "Check the GPU's seating, power cabling and NVLink/PCIe connections (needs physical access)."
            }
            Self::RebootNode => "Drain the node and power-cycle it; a GPU reset is not enough.",
            Self::ReplaceGpu => {
                "Drain the GPU and open an RMA / replacement case with the hardware vendor."
            }
        }
    }
}

/// Which workflow rule produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum XidRule {
    /// Xid 48 without a row-remap companion.
    Xid48Dbe,
    /// Xid 48 with Xid 63 (row remap recorded) on the same GPU.
    Xid48WithRowRemap,
    /// Xid 48 with Xid 64 (remap failed) on the same GPU.
    Xid48WithRemapFailure,
    Xid63RowRemap,
    Xid64RemapFailure,
    /// Xid 45 with no other Xid near it.
    Xid45Alone,
    /// Xid 45 as cleanup after other Xids.
    Xid45Cleanup,
    /// Xid 43 after another Xid: act on that one.
    Xid43AfterOtherXid,
    Xid43Alone,
    /// Xid 13 or 31 recurring on one GPU (same GPC/TPC for 13): suspect hardware.
    RecurringOnOneGpu,
    /// Xid 13 or 31 once, or on several GPUs: the application.
    ApplicationFault,
    Xid74Nvlink,
    Nvlink5Error,
    Xid79FallenOffBus,
    Xid154RecoveryAction,
    Xid94Contained,
    Xid95Uncontained,
    /// Any other catalog code: the catalog's immediate action.
    Catalog,
    /// A code the catalog does not know.
    UnknownCode,
}

/// One Xid event as the kernel logged it, explained.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidEvent {
    /// Wall-clock time (RFC 3339 UTC), converted from time since boot where needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_since_boot: Option<f64>,
    /// `/dev/kmsg` sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub code: u32,
    /// Catalog mnemonic, or `UNKNOWN`.
    pub mnemonic: String,
    pub severity: Severity,
    /// The catalog's immediate action; absent for codes not in the catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immediate_action: Option<ActionBucket>,
    /// Kernel form of the PCI location: `0000:3b:00`.
    pub pci_bus_id: String,
    /// Present when the PCI location matched a GPU NVML reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
    /// The driver's text after the code.
    pub message: String,
    /// Xid 74 / 144–150: link and register words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink: Option<NvlinkDetail>,
}

/// Count and time span of one code on one GPU (every event in the window, even past `max_events`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidCodeSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    pub pci_bus_id: String,
    pub code: u32,
    pub mnemonic: String,
    pub severity: Severity,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// A workflow conclusion for one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidFinding {
    pub rule: XidRule,
    pub severity: Severity,
    /// The Xid codes this finding is about.
    pub codes: Vec<u32>,
    /// Events behind it.
    pub event_count: u64,
    pub message: String,
    pub recommended_action: RecommendedAction,
    /// `recommended_action` in plain language.
    pub action_instruction: String,
    /// Up to three of the events' texts, newest last.
    pub evidence: Vec<String>,
}

/// Everything about one GPU (or one PCI location no GPU matched).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct GpuXidAssessment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// False for a PCI location from the log that no GPU NVML reports matched.
    pub attributed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed_reason: Option<String>,
    /// The UUID the driver logged for this PCI location (`NVRM: GPU at PCI:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid_from_kernel_log: Option<String>,
    pub xid_event_count: u64,
    /// Distinct codes seen, ascending.
    pub codes: Vec<u32>,
    pub verdict: Verdict,
    /// The most disruptive action among the findings.
    pub recommended_action: RecommendedAction,
    pub findings: Vec<XidFinding>,
}

/// The catalog's explanation of one code seen in the window.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidExplanation {
    pub code: u32,
    pub mnemonic: String,
    /// False when the code is not in the catalog.
    pub in_catalog: bool,
    pub meaning: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immediate_action: Option<ActionBucket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immediate_instruction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub investigatory_action: Option<ActionBucket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub investigatory_instruction: Option<String>,
    /// GPU families NVIDIA lists for the code (empty: not used on Ampere and newer).
    pub applies_to: Vec<String>,
    /// Driver branch since which the code triggers an Xid 154 recovery-action change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xid154_linkage: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// How much history the log holds and which part was analysed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LogCoverage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_record_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_record_time: Option<String>,
    /// From the oldest record to the analysis time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_seconds: Option<f64>,
    /// The `since_seconds` filter, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
    /// Start of the analysed window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start_time: Option<String>,
    /// One sentence qualifying "no Xids": what span the log covers.
    pub description: String,
}

/// The result of one Xid analysis.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct XidReport {
    pub source: SourceUsed,
    /// When the analysis ran (RFC 3339 UTC).
    pub analyzed_at: String,
    pub coverage: LogCoverage,
    pub records_scanned: u64,
    /// Xid events in the window (after `since_seconds` and `gpu_index`).
    pub xid_event_count: u64,
    /// Events listed in `events` (at most `max_events`).
    pub events_returned: u32,
    /// True when `max_events` cut the `events` list; `summary` and `gpus` still count everything.
    pub truncated: bool,
    /// Worst verdict over all GPUs and unattributed PCI locations.
    pub verdict: Verdict,
    pub recommended_action: RecommendedAction,
    pub gpus: Vec<GpuXidAssessment>,
    /// Per GPU, per code: count and first/last seen.
    pub summary: Vec<XidCodeSummary>,
    /// Newest first.
    pub events: Vec<XidEvent>,
    /// One catalog explanation per code in `summary`.
    pub explanations: Vec<XidExplanation>,
    /// Caveats: dropped or lost records, malformed lines, clock assumptions, filters.
    pub notes: Vec<String>,
}
