//! Xid rules: the few Xids that say something about a GPU's health by themselves (gpu-health.md §4,
//! §5). Every other Xid is listed as information for the Xid tool to explain, never dropped.

use std::collections::BTreeMap;

use crate::health::ObservedXid;
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;
use crate::xid::catalog::{self, Severity as CatalogSeverity};

/// Xids grouped by GPU (`None` = not attributed) then code: count summed, latest `last_seen`.
pub(in crate::health) type XidGroups = BTreeMap<Option<u32>, BTreeMap<u32, (u64, String)>>;

/// Groups the observed Xids by GPU and code.
pub(in crate::health) fn group(xids: &[ObservedXid]) -> XidGroups {
    let mut groups = XidGroups::new();
    for x in xids {
        let slot = groups
            .entry(x.gpu_index)
            .or_default()
            .entry(x.code)
            .or_insert_with(|| (0, String::new()));
        slot.0 = slot.0.saturating_add(u64::from(x.count));
        if x.last_seen > slot.1 {
            slot.1.clone_from(&x.last_seen);
        }
    }
    groups
}

/// The findings for one GPU's Xids (`gpu_index` `None`: Xids not attributed to any GPU).
pub(in crate::health) fn findings(
    gpu_index: Option<u32>,
    codes: &BTreeMap<u32, (u64, String)>,
) -> Vec<Finding> {
    let gpu = gpu_index.map_or("an unidentified GPU".to_string(), |i| format!("GPU {i}"));
    let reset = gpu_index.map_or(
        "reset the GPU named in the kernel log (`nvidia-smi -r -i INDEX`)".to_string(),
        |i| format!("reset GPU {i} (`nvidia-smi -r -i {i}`)"),
    );
    let has = |code| codes.contains_key(&code);
    codes
        .iter()
        .map(|(&code, (count, last_seen))| {
            let (rule, severity, meaning, action) = match code {
                48 => (
                    Rule::Xid48,
                    Severity::Fail,
                    "an uncorrectable (double-bit) ECC error",
                    if has(64) {
                        format!(
                            "Drain {gpu}'s workloads and {reset}; the remap failed too (Xid 64), so \
                             replace the GPU (RMA)."
                        )
                    } else if has(63) {
                        format!("Drain {gpu}'s workloads, then {reset} so the row remap (Xid 63) applies.")
                    } else {
                        format!("Stop {gpu}'s workloads and {reset}.")
                    },
                ),
                63 => (
                    Rule::Xid63,
                    Severity::Warn,
                    "a row remap or page retirement was recorded",
                    format!(
                        "Check the memory.row_remap_* findings; when {gpu} is drained, {reset} so the \
                         remap takes effect."
                    ),
                ),
                64 => (
                    Rule::Xid64,
                    Severity::Fail,
                    "recording a row remap or page retirement failed",
                    format!("Drain {gpu} and {reset}; it is an RMA candidate if this recurs."),
                ),
                74 => (
                    Rule::Xid74,
                    Severity::Fail,
                    "an NVLink error",
                    format!(
                        "Check the links (`nvidia-smi nvlink -s` / `-e`) and the nvlink.* findings, \
                         drain {gpu} and {reset}; replace the part if errors recur on the same link."
                    ),
                ),
                79 => (
                    Rule::Xid79,
                    Severity::Fail,
                    "the GPU fell off the PCIe bus",
                    "Drain the node and power-cycle it; check the GPU's PCIe seating and power if it \
                     recurs."
                        .to_string(),
                ),
                94 => (
                    Rule::Xid94,
                    Severity::Info,
                    "a contained uncorrectable error that only the application using the memory saw",
                    "Restart the affected workload; the GPU itself need not be taken out of service."
                        .to_string(),
                ),
                95 => (
                    Rule::Xid95,
                    Severity::Fail,
                    "an uncontained uncorrectable error: the GPU's state is suspect",
                    format!("Stop {gpu}'s workloads and {reset}; replace the GPU if it recurs."),
                ),
                _ => other_xid(code),
            };
            let companions: Vec<String> = codes
                .keys()
                .filter(|&&c| c != code)
                .map(u32::to_string)
                .collect();
            let mut f = Finding::new(
                rule,
                severity,
                format!("{gpu} reported Xid {code} ({meaning}) {count} time(s), last at {last_seen}."),
            )
            .with("xid", code)
            .with("count", *count)
            .with("last_seen", last_seen.as_str())
            .action(action);
            if !companions.is_empty() {
                f = f.with("other_xids_on_gpu", companions.join(", "));
            }
            f
        })
        .collect()
}

/// A code without a rule of its own: judged by NVIDIA's catalog, a critical (reset/reboot/replace)
/// code warns, anything else is information; the Xid tool explains it in full.
fn other_xid(code: u32) -> (Rule, Severity, &'static str, String) {
    let see = "Run analyze_xid_errors for the code's meaning and NVIDIA's recommended action.";
    match catalog::lookup(code) {
        Some(entry) if entry.severity == CatalogSeverity::Critical => (
            Rule::XidOther,
            Severity::Warn,
            entry.mnemonic,
            format!("{} {see}", entry.immediate_action.instruction()),
        ),
        Some(entry) => (
            Rule::XidOther,
            Severity::Info,
            entry.mnemonic,
            see.to_string(),
        ),
        None => (
            Rule::XidOther,
            Severity::Info,
            "an Xid not in NVIDIA's catalog as this agent knows it",
            see.to_string(),
        ),
    }
}
