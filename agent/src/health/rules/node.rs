//! Node-level rules: GPUs on the PCI bus that NVML does not enumerate.

use crate::gpu::NodeSnapshot;

use super::Out;
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// `gpu.count_mismatch`: NVML's GPU count against the NVIDIA GPU functions on the PCI bus.
pub(in crate::health) fn check_count(snap: &NodeSnapshot, out: &mut Out) {
    let on_bus = match &snap.pci_gpu_functions {
        Ok(list) => list,
        Err(e) => {
            out.skip(
                Rule::GpuCountMismatch,
                format!("NVIDIA GPU functions on the PCI bus: {e}"),
            );
            return;
        }
    };
    let nvml = snap.device_count;
    let bus = on_bus.len() as u64;
    if u64::from(nvml) > bus {
        out.push(
            Finding::new(
                Rule::GpuCountMismatch,
                Severity::Info,
                format!(
                    "NVML enumerates {nvml} GPU(s) but the PCI scan found only {bus}: the agent's \
                     container probably sees only part of /sys/bus/pci, so missing GPUs cannot be \
                     detected this way."
                ),
            )
            .with("nvml_device_count", nvml)
            .with("pci_gpu_functions", bus),
        );
        return;
    }
    if u64::from(nvml) == bus {
        return;
    }
    // Which addresses NVML misses can be told only when every enumerated GPU's address was read.
    let known: Option<Vec<_>> = (snap.devices.len() == nvml as usize)
        .then(|| {
            snap.devices
                .iter()
                .map(|d| d.pci.as_ref().ok().map(|p| p.bus_id))
                .collect()
        })
        .flatten();
    let missing: Option<Vec<String>> = known.map(|known| {
        on_bus
            .iter()
            .filter(|a| !known.iter().any(|k| k.same_device(a)))
            .map(|a| a.nvml_bus_id())
            .collect()
    });
    let mut finding = match missing.as_deref() {
        Some(missing) if !missing.is_empty() => Finding::new(
            Rule::GpuCountMismatch,
            Severity::Fail,
            format!(
                "NVML enumerates {nvml} GPU(s) but the PCI bus holds {bus} NVIDIA GPU(s): NVML does \
                 not see the GPU(s) at {}.",
                missing.join(", ")
            ),
        )
        .with("missing_pci_bus_ids", missing.join(", ")),
        _ => Finding::new(
            Rule::GpuCountMismatch,
            Severity::Fail,
            format!(
                "NVML enumerates {nvml} GPU(s) but the PCI bus holds {bus} NVIDIA GPU(s); which ones \
                 are missing is unknown because not every GPU's PCI address was read."
            ),
        )
        .with("pci_gpu_functions_on_bus", on_bus.iter().map(|a| a.nvml_bus_id()).collect::<Vec<_>>().join(", ")),
    };
    finding = finding
        .with("nvml_device_count", nvml)
        .with("pci_gpu_functions", bus)
        .action(
            "Look for Xid 79 or NVRM errors about the missing GPU(s) in the kernel log \
             (analyze_xid_errors) and check them with `lspci -vv -s ADDRESS`; drain the node and \
             power-cycle it, then reseat or replace a GPU that stays missing. Until then the device \
             plugin's GPU count for this node is wrong.",
        );
    out.push(finding);
}
