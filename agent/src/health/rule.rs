//! The rule ids every finding names: one closed list, so the wire form, the docs and the tests agree
//! on the spelling, and a client can match on a rule instead of parsing messages.

use schemars::JsonSchema;
use serde::Serialize;

/// A health rule. The wire form (`thermal.slowdown`, `xid.95`, …) is the finding's `check` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum Rule {
    /// NVML enumerates fewer GPUs than the PCI bus holds.
    #[serde(rename = "gpu.count_mismatch")]
    GpuCountMismatch,
    /// No earlier snapshot was given, so no rate rule could run.
    #[serde(rename = "rates.no_baseline")]
    RatesNoBaseline,
    /// NVML reports the GPU lost (`GPU_IS_LOST` / `RESET_REQUIRED`).
    #[serde(rename = "gpu.lost")]
    GpuLost,
    /// The GPU's handle could not be opened for another reason: nothing about it could be checked.
    #[serde(rename = "gpu.unreadable")]
    GpuUnreadable,
    /// Temperature at or above the slowdown threshold.
    #[serde(rename = "thermal.slowdown")]
    ThermalSlowdown,
    /// Temperature at or above the shutdown threshold.
    #[serde(rename = "thermal.shutdown")]
    ThermalShutdown,
    /// Thermal violation time grew during the window.
    #[serde(rename = "thermal.violation_rate")]
    ThermalViolationRate,
    /// Power draw could not be read.
    #[serde(rename = "power.unreadable")]
    PowerUnreadable,
    /// Power draw above the enforced limit.
    #[serde(rename = "power.over_limit")]
    PowerOverLimit,
    /// Power violation time grew during the window.
    #[serde(rename = "power.violation_rate")]
    PowerViolationRate,
    /// Clock event reason `HwSlowdown` (0x8).
    #[serde(rename = "clock_events.hw_slowdown")]
    ClockEventsHwSlowdown,
    /// Clock event reason `SwThermalSlowdown` (0x20).
    #[serde(rename = "clock_events.sw_thermal_slowdown")]
    ClockEventsSwThermalSlowdown,
    /// Clock event reason `HwThermalSlowdown` (0x40).
    #[serde(rename = "clock_events.hw_thermal_slowdown")]
    ClockEventsHwThermalSlowdown,
    /// Clock event reason `HwPowerBrakeSlowdown` (0x80).
    #[serde(rename = "clock_events.hw_power_brake")]
    ClockEventsHwPowerBrake,
    /// Clock event reason `SwPowerCap` (0x4): normal under heavy load.
    #[serde(rename = "clock_events.sw_power_cap")]
    ClockEventsSwPowerCap,
    /// Clock event reasons that need no action (application clocks, sync boost, display, unknown bits).
    #[serde(rename = "clock_events.informational")]
    ClockEventsInformational,
    /// ECC is disabled.
    #[serde(rename = "ecc.disabled")]
    EccDisabled,
    /// Uncorrectable ECC errors since the driver loaded.
    #[serde(rename = "ecc.volatile_dbe")]
    EccVolatileDbe,
    /// Uncorrectable ECC errors in the GPU's lifetime, none since the driver loaded.
    #[serde(rename = "ecc.aggregate_dbe")]
    EccAggregateDbe,
    /// Corrected ECC errors.
    #[serde(rename = "ecc.sbe")]
    EccSbe,
    /// Retired pages (pre-Ampere) at the hardware limit.
    #[serde(rename = "memory.retired_pages")]
    RetiredPages,
    /// Many pages retired for double-bit errors (pre-Ampere).
    #[serde(rename = "memory.retired_pages_dbe")]
    RetiredPagesDbe,
    /// A page retirement waits for a reset (pre-Ampere).
    #[serde(rename = "memory.retired_pages_pending")]
    RetiredPagesPending,
    /// A row remap failed: the bank has no spare rows (Ampere+).
    #[serde(rename = "memory.row_remap_failure")]
    RowRemapFailure,
    /// A row remap waits for the next GPU reset (Ampere+).
    #[serde(rename = "memory.row_remap_pending")]
    RowRemapPending,
    /// PCIe link narrower than the GPU's maximum.
    #[serde(rename = "pcie.link_width")]
    PcieLinkWidth,
    /// PCIe link generation below the maximum while the GPU is busy.
    #[serde(rename = "pcie.link_gen")]
    PcieLinkGen,
    /// PCIe replays above the per-minute threshold for the link's generation and width.
    #[serde(rename = "pcie.replay_rate")]
    PcieReplayRate,
    /// An NVLink is inactive.
    #[serde(rename = "nvlink.down")]
    NvlinkDown,
    /// NVLink replay/recovery errors since the driver loaded.
    #[serde(rename = "nvlink.error_totals")]
    NvlinkErrorTotals,
    /// NVLink CRC errors since the driver loaded.
    #[serde(rename = "nvlink.crc_totals")]
    NvlinkCrcTotals,
    /// New NVLink CRC errors at ≥ 1 per minute.
    #[serde(rename = "nvlink.crc_rate")]
    NvlinkCrcRate,
    /// New NVLink replay errors at ≥ 1 per minute.
    #[serde(rename = "nvlink.replay_rate")]
    NvlinkReplayRate,
    /// New NVLink recovery errors at ≥ 1 per minute.
    #[serde(rename = "nvlink.recovery_rate")]
    NvlinkRecoveryRate,
    /// The InfoROM is corrupted.
    #[serde(rename = "inforom.corrupt")]
    InforomCorrupt,
    /// The driver recommends a recovery action (NVML field 230).
    #[serde(rename = "recovery_action")]
    RecoveryAction,
    /// Xid 48: uncorrectable (double-bit) ECC error.
    #[serde(rename = "xid.48")]
    Xid48,
    /// Xid 63: row remap / page retirement recorded.
    #[serde(rename = "xid.63")]
    Xid63,
    /// Xid 64: recording a row remap / page retirement failed.
    #[serde(rename = "xid.64")]
    Xid64,
    /// Xid 74: NVLink error.
    #[serde(rename = "xid.74")]
    Xid74,
    /// Xid 79: the GPU has fallen off the bus.
    #[serde(rename = "xid.79")]
    Xid79,
    /// Xid 94: contained uncorrectable error (only the application that hit it is affected).
    #[serde(rename = "xid.94")]
    Xid94,
    /// Xid 95: uncontained uncorrectable error.
    #[serde(rename = "xid.95")]
    Xid95,
    /// Any other Xid: critical ones (per NVIDIA's catalog) warn, the rest are information.
    #[serde(rename = "xid.other")]
    XidOther,
    /// The kernel log could not be read, so no Xid rule ran.
    #[serde(rename = "xid.kernel_log")]
    XidKernelLog,
    /// An alerting clock event reason (HW slowdown, thermal, power brake) held for most of the last
    /// minutes (flight-recorder history only).
    #[serde(rename = "clock_events.sustained")]
    ClockEventsSustained,
    /// Corrected ECC errors over the last 24 h above the rate worth watching (history only).
    #[serde(rename = "ecc.sbe_rate_24h")]
    EccSbeRate24h,
    /// The same Xid on the same GPU again and again within 24 h (history only).
    #[serde(rename = "xid.repeated")]
    XidRepeated,
    /// The GPU counts of NVML, the node's capacity and allocatable, the kubelet and the
    /// ResourceSlices disagree.
    #[serde(rename = "k8s.gpu_count")]
    K8sGpuCount,
    /// The GPU feature-discovery product label does not name NVML's GPU.
    #[serde(rename = "k8s.product_label")]
    K8sProductLabel,
    /// The GPU feature-discovery driver label differs from NVML's driver version.
    #[serde(rename = "k8s.driver_label")]
    K8sDriverLabel,
    /// The node's Ready condition is not True.
    #[serde(rename = "k8s.node_not_ready")]
    K8sNodeNotReady,
    /// The node is cordoned (`spec.unschedulable`).
    #[serde(rename = "k8s.node_cordoned")]
    K8sNodeCordoned,
    /// The node carries a GPU taint with a NoSchedule/NoExecute effect.
    #[serde(rename = "k8s.gpu_taint")]
    K8sGpuTaint,
    /// The kubelet still assigns GPUs to a pod the API server no longer has.
    #[serde(rename = "k8s.stale_allocation")]
    K8sStaleAllocation,
}

impl Rule {
    /// The rules that need two snapshots (a baseline) to run.
    pub const RATE_RULES: [Rule; 6] = [
        Rule::PcieReplayRate,
        Rule::NvlinkCrcRate,
        Rule::NvlinkReplayRate,
        Rule::NvlinkRecoveryRate,
        Rule::ThermalViolationRate,
        Rule::PowerViolationRate,
    ];

    /// The wire id, as in the JSON output (`pcie.replay_rate`).
    pub fn id(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            // Every variant serializes to a string (unit variants with a rename).
            other => unreachable!("rule {self:?} serialized as {other:?}"),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id())
    }
}
