//! NVIDIA's Xid catalog as a static table, generated at build time from `agent/data/xid-catalog.csv`.
//!
//! Every code NVIDIA documents for Ampere and newer GPUs is here with its mnemonic, the catalog's
//! immediate and investigatory action buckets, the fatal flag and our plain-language meaning. Codes
//! outside the table are explained as unknown, never guessed.

use schemars::JsonSchema;
use serde::Serialize;

include!(concat!(env!("OUT_DIR"), "/xid_catalog.rs"));

/// Where to look up a code the table does not know (a newer driver may emit it).
pub const NVIDIA_XID_CATALOG_URL: &str =
    "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html";

/// How bad an Xid is for the GPU, from the operator's point of view (ordered: `Info` is mildest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: nothing to do by itself.
    Info,
    /// The application (not the GPU) needs attention, or something to watch.
    Warning,
    /// Unexpected on this GPU generation: report it.
    Error,
    /// The GPU or node needs a reset, reboot, repair or replacement.
    Critical,
    /// The code is not in the catalog.
    Unknown,
}

/// NVIDIA's resolution buckets (immediate and investigatory), as the catalog names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionBucket {
    RestartApp,
    ResetGpu,
    /// Restart bare metal: power-cycle the node.
    RestartBm,
    Ignore,
    CheckMechanicals,
    UnexpectedErrReportIssue,
    ContactSupport,
    RestartVm,
    /// Update software and firmware.
    UpdateSwfw,
    CheckUvm,
    #[serde(rename = "WORKFLOW_XID_13")]
    WorkflowXid13,
    #[serde(rename = "WORKFLOW_XID_31")]
    WorkflowXid31,
    #[serde(rename = "WORKFLOW_XID_45")]
    WorkflowXid45,
    #[serde(rename = "WORKFLOW_XID_48")]
    WorkflowXid48,
    WorkflowNvlinkErr,
    #[serde(rename = "WORKFLOW_NVLINK5_ERR")]
    WorkflowNvlink5Err,
    #[serde(rename = "XID_154")]
    Xid154,
    /// The catalog's `CHECK_APP/CUDA`.
    CheckAppCuda,
    InvestigateSw,
    InvestigateSwUser,
    InvestigateLinkSi,
    /// The catalog's `IGNORE (sympathetic)`.
    IgnoreSympathetic,
    SympatheticReportSolo,
    #[serde(rename = "XID_137_FLOW")]
    Xid137Flow,
    /// The catalog's `N/A Informational only regarding another Xid`.
    Informational,
}

impl ActionBucket {
    /// Every bucket, for tests and documentation.
    pub const ALL: [ActionBucket; 25] = [
        Self::RestartApp,
        Self::ResetGpu,
        Self::RestartBm,
        Self::Ignore,
        Self::CheckMechanicals,
        Self::UnexpectedErrReportIssue,
        Self::ContactSupport,
        Self::RestartVm,
        Self::UpdateSwfw,
        Self::CheckUvm,
        Self::WorkflowXid13,
        Self::WorkflowXid31,
        Self::WorkflowXid45,
        Self::WorkflowXid48,
        Self::WorkflowNvlinkErr,
        Self::WorkflowNvlink5Err,
        Self::Xid154,
        Self::CheckAppCuda,
        Self::InvestigateSw,
        Self::InvestigateSwUser,
        Self::InvestigateLinkSi,
        Self::IgnoreSympathetic,
        Self::SympatheticReportSolo,
        Self::Xid137Flow,
        Self::Informational,
    ];

    /// What the operator should do, in plain language.
    pub fn instruction(self) -> &'static str {
        match self {
            Self::RestartApp => {
                "Restart the application that hit the error; the GPU needs neither a reset nor a node reboot."
            }
            Self::ResetGpu => {
                "Stop the GPU's processes and reset it (`nvidia-smi -r -i <gpu>`; drain the node and reboot if a reset is not possible). If the error returns after the reset, escalate to a node reboot, then to hardware replacement."
            }
            Self::RestartBm => {
                "Power-cycle the node (bare-metal restart); a GPU reset is not enough."
            }
            Self::Ignore => {
                "Nothing to do for this Xid by itself; read the Xids and counters that came with it."
            }
            Self::CheckMechanicals => {
                "Check that the GPU is seated and that its auxiliary power and other connections are secure."
            }
            Self::UnexpectedErrReportIssue => {
                "Unexpected on this GPU generation: collect `nvidia-bug-report.sh` output and open a support case with NVIDIA or the system vendor."
            }
            Self::ContactSupport => {
                "Contact your support organisation (system vendor or NVIDIA) with `nvidia-bug-report.sh` output."
            }
            Self::RestartVm => {
                "Restart the VM that owns the GPU; a GPU reset or node reboot is not needed."
            }
            Self::UpdateSwfw => {
                "Update the GPU driver and firmware; for vGPU make the guest and host drivers compatible and use a supported vGPU type."
            }
            Self::CheckUvm => "If UVM or vGPU is in use, reset the GPU; otherwise nothing to do.",
            Self::WorkflowXid13 => {
                "The same GPC/TPC failing again and again on one GPU points to hardware: run DCGM diagnostics (`dcgmi diag -r 3`), then NVIDIA field diagnostics. A single burst, or occurrences on several GPUs, point to the application: debug it with compute-sanitizer or cuda-gdb."
            }
            Self::WorkflowXid31 => {
                "Repeated MMU faults on the same GPU point to hardware: run DCGM diagnostics (`dcgmi diag -r 3`), then field diagnostics. Faults spread over several GPUs, or a single burst, point to the application."
            }
            Self::WorkflowXid45 => {
                "Alone: restart the NVIDIA fabric manager (NVSwitch systems). Next to other Xids it is only cleanup: follow those Xids instead."
            }
            Self::WorkflowXid48 => {
                "Alone: reset the GPU, then run field diagnostics. With Xid 63 or 64: drain the GPU's workloads and reset it so the row remap takes effect (64, remap failed: RMA path). SRAM errors: check the SRAM error-threshold flag and run field diagnostics if it is set."
            }
            Self::WorkflowNvlinkErr => {
                "Decode the register words in the message, check the links with `nvidia-smi nvlink -s` and `-e`, and reset the GPU. Errors that recur on the same link: reseat the link and GPU, run field diagnostics, then replace."
            }
            Self::WorkflowNvlink5Err => {
                "Decode intrInfo and errorStatus in the message with NVIDIA's Xid 144-150 table to get the action; fatal errors need a GPU reset."
            }
            Self::Xid154 => {
                "Follow the recovery action the driver reports in this Xid (also readable as NVML field 230, GPU recovery action)."
            }
            Self::CheckAppCuda => {
                "The application likely passed bad data or drove the GPU incorrectly: find it by the pid in the message; report a driver issue if the application is known to be good."
            }
            Self::InvestigateSw => {
                "Investigate the user or NVIDIA software that drove the GPU (pid in the message); report NVIDIA software problems to NVIDIA."
            }
            Self::InvestigateSwUser => {
                "Check whether software or a user caused it on purpose (for example a link put to sleep); investigate if that was not expected."
            }
            Self::InvestigateLinkSi => {
                "Investigate the link's signal integrity and mechanics: cables, seating, link telemetry."
            }
            Self::IgnoreSympathetic | Self::SympatheticReportSolo => {
                "A side effect of another error: resolve the other Xids first; report this one if it appears alone."
            }
            Self::Xid137Flow => {
                "Illegal NVLink peer-to-peer access, usually the application: run it under compute-sanitizer or cuda-gdb (CUDA_DEVICE_WAITS_ON_EXCEPTION=1); file a bug if that is inconclusive."
            }
            Self::Informational => {
                "Informational: always seen with another Xid that needs an action; act on that one."
            }
        }
    }
}

/// One catalog row: what NVIDIA says about an Xid code, plus our plain-language meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidCatalogEntry {
    pub code: u32,
    pub mnemonic: &'static str,
    pub immediate_action: ActionBucket,
    pub investigatory_action: ActionBucket,
    /// NVIDIA's FATAL/NONFATAL flag; `None` where the catalog gives none.
    pub fatal: Option<bool>,
    pub severity: Severity,
    /// GPU families (A100, H100, B100, GB200) the code applies to; empty = unused on Ampere+.
    pub applies_to: &'static [&'static str],
    /// Driver branch since which the code is expected to trigger an Xid 154 ("R565", "yes").
    pub xid154_linkage: Option<&'static str>,
    /// NVIDIA's short description.
    pub description: &'static str,
    /// Our plain-language meaning.
    pub meaning: &'static str,
    /// Investigation hints and caveats.
    pub notes: &'static str,
}

/// The whole catalog, sorted by code.
pub fn entries() -> &'static [XidCatalogEntry] {
    &CATALOG
}

/// The catalog row for `code`, or `None` when the code is not in NVIDIA's catalog as we know it.
pub fn lookup(code: u32) -> Option<&'static XidCatalogEntry> {
    CATALOG
        .binary_search_by_key(&code, |entry| entry.code)
        .ok()
        .map(|index| &CATALOG[index])
}

/// The meaning reported for a code the catalog does not know.
pub fn unknown_code_meaning() -> String {
    format!("not in catalog, see NVIDIA Xid catalog ({NVIDIA_XID_CATALOG_URL})")
}

#[cfg(test)]
mod tests;
