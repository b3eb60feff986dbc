//! Whole-GPU rules: lost or unreadable GPUs, the InfoROM, and the driver's recovery action.

use crate::gpu::{DeviceSnapshot, NvmlReturn, ReadError};

use super::{Out, gpu_label};
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// Reports a lost or unopenable GPU; `false` when no other rule can read it.
pub(in crate::health) fn reachable(dev: &DeviceSnapshot, out: &mut Out) -> bool {
    let label = gpu_label(dev);
    if let Err(e) = &dev.handle
        && !e.is_gpu_lost()
    {
        out.push(
            Finding::new(
                Rule::GpuUnreadable,
                Severity::Warn,
                format!("{label} could not be opened through NVML ({e}), so none of its health checks ran."),
            )
            .with("nvml_error", e.code.c_name())
            .action(format!(
                "Run `nvidia-smi -i {}` on the node; if it fails too, check the driver (`dmesg | grep NVRM`).",
                dev.index
            )),
        );
        return false;
    }
    let Some((read, e)) = first_lost_read(dev) else {
        return true;
    };
    let mut finding = if e.code == NvmlReturn::ResetRequired {
        Finding::new(
            Rule::GpuLost,
            Severity::Fail,
            format!(
                "{label} needs a reset before it can be used: NVML answers {} on every query.",
                e.code.c_name()
            ),
        )
        .action(format!(
            "Drain the node's GPU workloads and reset GPU {i} (`nvidia-smi -r -i {i}`); reboot the \
             node if the reset fails.",
            i = dev.index
        ))
    } else {
        Finding::new(
            Rule::GpuLost,
            Severity::Fail,
            format!(
                "{label} is lost: it has fallen off the bus or is otherwise inaccessible ({}), \
                 so none of its other health checks could run.",
                e.code.c_name()
            ),
        )
        .action(
            "Drain the node and power-cycle it (a GPU reset rarely recovers a GPU that fell off the \
             bus); if it recurs, check the GPU's PCIe seating and power, then replace it. Until then \
             one lost GPU can break GPU allocation for the whole node.",
        )
    };
    finding = finding
        .with("failed_read", read)
        .with("nvml_error", e.code.c_name());
    if let Ok(pci) = &dev.pci {
        finding = finding.with("pci_bus_id", pci.bus_id.nvml_bus_id());
    }
    out.push(finding);
    false
}

/// The first read (handle, identity, then live values) that says the GPU is lost.
fn first_lost_read(dev: &DeviceSnapshot) -> Option<(&'static str, &ReadError)> {
    let reads: [(&'static str, Option<&ReadError>); 10] = [
        ("handle", dev.handle.as_ref().err()),
        ("name", dev.name.as_ref().err()),
        ("uuid", dev.uuid.as_ref().err()),
        ("pci", dev.pci.as_ref().err()),
        ("temperature", dev.temperature_c.as_ref().err()),
        ("power_draw", dev.power_draw_watts.as_ref().err()),
        ("memory", dev.memory.as_ref().err()),
        ("utilization", dev.utilization.as_ref().err()),
        (
            "clock_event_reasons",
            dev.clock_event_reasons.as_ref().err(),
        ),
        (
            "ecc_volatile_uncorrected",
            dev.ecc_volatile_uncorrected.as_ref().err(),
        ),
    ];
    reads
        .into_iter()
        .find_map(|(name, e)| e.filter(|e| e.is_gpu_lost()).map(|e| (name, e)))
}

/// `inforom.corrupt`: `nvmlDeviceValidateInforom` failed its checksum.
pub(in crate::health) fn check_inforom(dev: &DeviceSnapshot, out: &mut Out) {
    let corrupt = match &dev.inforom_valid {
        Ok(valid) => !valid,
        Err(e) if e.code == NvmlReturn::CorruptedInforom => true,
        Err(e) => {
            out.skip(Rule::InforomCorrupt, format!("InfoROM validation: {e}"));
            return;
        }
    };
    if corrupt {
        out.push(
            Finding::new(
                Rule::InforomCorrupt,
                Severity::Warn,
                format!(
                    "{}'s InfoROM is corrupted: the ECC and retirement records it keeps cannot be trusted.",
                    gpu_label(dev)
                ),
            )
            .with("inforom_valid", false)
            .action(
                "The GPU keeps working; open a support case with NVIDIA to reflash the InfoROM \
                 (`nvidia-smi -q` and `nvidia-bug-report.sh` output), and replace the GPU if it recurs.",
            ),
        );
    }
}

/// `recovery_action`: NVML field 230 (`nvmlDeviceGpuRecoveryAction_t`).
pub(in crate::health) fn check_recovery_action(dev: &DeviceSnapshot, out: &mut Out) {
    let Some(&value) = out.need(
        Rule::RecoveryAction,
        "recovery action (NVML field 230)",
        &dev.recovery_action,
    ) else {
        return;
    };
    let i = dev.index;
    let label = gpu_label(dev);
    let (severity, name, message, action) = match value {
        0 => return,
        1 => (
            Severity::Fail,
            "GPU_RESET",
            format!("The driver says {label} must be reset before it can be used again."),
            format!(
                "Stop the GPU's processes (drain its pods) and reset it (`nvidia-smi -r -i {i}`); \
                 reboot the node if the reset fails."
            ),
        ),
        2 => (
            Severity::Fail,
            "NODE_REBOOT",
            format!("The driver says the node must be rebooted for {label}: OS state may be inconsistent."),
            "Drain the node and reboot it.".to_string(),
        ),
        3 => (
            Severity::Warn,
            "DRAIN_P2P",
            format!("The driver asks to stop peer-to-peer traffic on {label} before it can recover."),
            format!(
                "Stop the workloads using peer-to-peer (NVLink/PCIe P2P) with GPU {i}, disable UVM \
                 persistence, then query the recovery action again."
            ),
        ),
        4 => (
            Severity::Warn,
            "DRAIN_AND_RESET",
            format!("The driver says {label} runs degraded and needs a reset once its work is drained."),
            format!(
                "Stop scheduling new work on GPU {i}, let running jobs finish (or drain them), then \
                 reset it (`nvidia-smi -r -i {i}`)."
            ),
        ),
        5 => (
            Severity::Fail,
            "RECOVER_IMEX_DOMAIN",
            format!("The driver says {label}'s IMEX domain must be recovered."),
            "Drain the workloads of the IMEX domain and follow NVIDIA's IMEX domain recovery procedure."
                .to_string(),
        ),
        6 => (
            Severity::Fail,
            "BUS_RESET",
            format!("The driver says {label} needs a PCIe bus reset."),
            format!("Drain GPU {i}'s workloads and reset it at the bus level, or reboot the node."),
        ),
        7 => (
            Severity::Fail,
            "SYSTEM_REBOOT",
            format!("The driver says the system must be rebooted for {label}."),
            "Drain the node and reboot it (a full system reboot, not only a driver reload).".to_string(),
        ),
        _ => (
            Severity::Warn,
            "unknown",
            format!(
                "The driver recommends recovery action {value} for {label}, which this agent does not know."
            ),
            "Look up the value in NVIDIA's nvmlDeviceGpuRecoveryAction_t documentation for this driver \
             and follow it."
                .to_string(),
        ),
    };
    out.push(
        Finding::new(Rule::RecoveryAction, severity, message)
            .with("recovery_action", value)
            .with("recovery_action_name", name)
            .action(action),
    );
}
