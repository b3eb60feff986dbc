//! The GPU snapshot: plain data read once from a backend (NVML or mock), the only thing the analysis
//! and tool layers ever see of a GPU. A value that could not be read keeps the NVML reason.

use std::fmt;

pub use gpu_fixture::{
    Architecture, ClockEventReason, ComputeCapability, ComputeMode, NvmlReturn, PciAddress,
};

/// Why one value is unavailable: the NVML code (identical on the mock and the real path) and, for
/// errors outside NVML's vocabulary, a detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub code: NvmlReturn,
    pub detail: Option<String>,
}

impl ReadError {
    /// An error carrying only its NVML code.
    pub const fn new(code: NvmlReturn) -> Self {
        ReadError { code, detail: None }
    }

    /// An error with extra context (e.g. the missing symbol's name).
    pub fn with_detail(code: NvmlReturn, detail: impl Into<String>) -> Self {
        ReadError {
            code,
            detail: Some(detail.into()),
        }
    }

    /// Whether the error says the GPU itself is gone or unusable (not merely a missing feature).
    pub fn is_gpu_lost(&self) -> bool {
        matches!(self.code, NvmlReturn::GpuIsLost | NvmlReturn::ResetRequired)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code.explanation(), self.code.c_name())?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// One value read from a GPU, or why it could not be.
pub type Reading<T> = Result<T, ReadError>;

/// Where the data came from; every tool result names it so mock data is never mistaken for real.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// The NVIDIA driver through `libnvidia-ml`.
    Nvml,
    /// A built-in mock scenario.
    MockScenario(String),
    /// A fixture file given with `--mock-fixture`.
    MockFixture(String),
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Nvml => f.write_str("nvml"),
            DataSource::MockScenario(name) => write!(f, "mock:{name}"),
            DataSource::MockFixture(path) => write!(f, "mock-fixture:{path}"),
        }
    }
}

/// Everything read from one node's GPUs at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSnapshot {
    pub driver_version: Reading<String>,
    /// CUDA driver API version, `MAJOR.MINOR`.
    pub cuda_driver_version: Reading<String>,
    pub nvml_version: Reading<String>,
    /// How many GPUs NVML enumerates (the node's total, even when `devices` is filtered).
    pub device_count: u32,
    /// The GPUs read, in NVML index order (all of them, or the one asked for).
    pub devices: Vec<DeviceSnapshot>,
    /// NVIDIA GPU functions found on the PCI bus, to notice GPUs NVML no longer enumerates.
    pub pci_gpu_functions: Reading<Vec<PciAddress>>,
}

/// Which GPUs a snapshot reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GpuFilter {
    #[default]
    All,
    Index(u32),
}

impl GpuFilter {
    /// Whether GPU `index` is included.
    pub fn includes(self, index: u32) -> bool {
        match self {
            GpuFilter::All => true,
            GpuFilter::Index(i) => i == index,
        }
    }
}

/// The identity of a GPU, cheap to read: enough to attribute kernel-log lines to GPUs.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceIdentity {
    pub index: u32,
    pub uuid: Reading<String>,
    pub pci: Reading<PciInfo>,
}

/// `nvmlDeviceGetPciInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciInfo {
    pub bus_id: PciAddress,
    /// Device and vendor id as NVML packs them (`0x233010DE`).
    pub device_id: u32,
    pub subsystem_id: u32,
}

/// `nvmlDeviceGetMemoryInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
}

/// `nvmlDeviceGetUtilizationRates`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utilization {
    pub gpu_percent: u32,
    pub memory_percent: u32,
}

/// `nvmlDeviceGetMigMode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigMode {
    pub current: bool,
    pub pending: bool,
}

/// A process holding a compute context on the GPU (host PID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuProcess {
    pub pid: u32,
    /// `None` when NVML reports the amount as unavailable.
    pub used_memory_bytes: Option<u64>,
}

/// One NVLink's state and cumulative error counters.
#[derive(Clone, Debug, PartialEq)]
pub struct NvLinkSnapshot {
    pub link: u32,
    pub active: Reading<bool>,
    pub crc_flit_errors: Reading<u64>,
    pub crc_data_errors: Reading<u64>,
    pub replay_errors: Reading<u64>,
    pub recovery_errors: Reading<u64>,
}

/// Everything read from one GPU. Each value is read by one NVML call and fails on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSnapshot {
    pub index: u32,
    /// Getting the device handle itself; when it fails every other value carries the same error.
    pub handle: Reading<()>,
    pub name: Reading<String>,
    pub uuid: Reading<String>,
    pub serial: Reading<String>,
    pub pci: Reading<PciInfo>,
    pub architecture: Reading<Architecture>,
    pub compute_capability: Reading<ComputeCapability>,
    pub vbios_version: Reading<String>,
    pub memory: Reading<MemoryInfo>,
    pub temperature_c: Reading<u32>,
    pub temperature_slowdown_c: Reading<u32>,
    pub temperature_shutdown_c: Reading<u32>,
    pub power_draw_watts: Reading<f64>,
    pub power_limit_watts: Reading<f64>,
    pub clock_sm_mhz: Reading<u32>,
    pub clock_memory_mhz: Reading<u32>,
    pub clock_sm_max_mhz: Reading<u32>,
    pub clock_memory_max_mhz: Reading<u32>,
    pub utilization: Reading<Utilization>,
    pub pcie_gen_current: Reading<u32>,
    pub pcie_gen_max: Reading<u32>,
    pub pcie_width_current: Reading<u32>,
    pub pcie_width_max: Reading<u32>,
    pub pcie_replay_counter: Reading<u64>,
    pub persistence_mode: Reading<bool>,
    pub mig_mode: Reading<MigMode>,
    pub compute_mode: Reading<ComputeMode>,
    pub processes: Reading<Vec<GpuProcess>>,
    pub ecc_enabled: Reading<bool>,
    pub ecc_volatile_corrected: Reading<u64>,
    pub ecc_volatile_uncorrected: Reading<u64>,
    pub ecc_aggregate_corrected: Reading<u64>,
    pub ecc_aggregate_uncorrected: Reading<u64>,
    pub retired_pages_sbe: Reading<u32>,
    pub retired_pages_dbe: Reading<u32>,
    pub retired_pages_pending: Reading<bool>,
    pub remapped_rows_correctable: Reading<u32>,
    pub remapped_rows_uncorrectable: Reading<u32>,
    pub remap_pending: Reading<bool>,
    pub remap_failure: Reading<bool>,
    /// Raw clock event ("throttle") reasons bitmask; decoded by the analysis layer.
    pub clock_event_reasons: Reading<u64>,
    /// Cumulative time (ns) clocks were held down for thermal reasons.
    pub violation_thermal_ns: Reading<u64>,
    /// Cumulative time (ns) clocks were held down for power reasons.
    pub violation_power_ns: Reading<u64>,
    /// `nvmlDeviceValidateInforom`: false when the infoROM is corrupted.
    pub inforom_valid: Reading<bool>,
    /// Per-link NVLink data; `Err(NOT_SUPPORTED)` on GPUs without NVLink.
    pub nvlinks: Reading<Vec<NvLinkSnapshot>>,
    /// NVML field 230, the driver's recommended recovery action.
    pub recovery_action: Reading<u32>,
}

impl DeviceSnapshot {
    /// A GPU of which nothing could be read: every value carries `err` (a lost GPU is still listed).
    pub fn unreachable(index: u32, handle: Reading<()>, err: ReadError) -> DeviceSnapshot {
        fn e<T>(err: &ReadError) -> Reading<T> {
            Err(err.clone())
        }
        DeviceSnapshot {
            index,
            handle,
            name: e(&err),
            uuid: e(&err),
            serial: e(&err),
            pci: e(&err),
            architecture: e(&err),
            compute_capability: e(&err),
            vbios_version: e(&err),
            memory: e(&err),
            temperature_c: e(&err),
            temperature_slowdown_c: e(&err),
            temperature_shutdown_c: e(&err),
            power_draw_watts: e(&err),
            power_limit_watts: e(&err),
            clock_sm_mhz: e(&err),
            clock_memory_mhz: e(&err),
            clock_sm_max_mhz: e(&err),
            clock_memory_max_mhz: e(&err),
            utilization: e(&err),
            pcie_gen_current: e(&err),
            pcie_gen_max: e(&err),
            pcie_width_current: e(&err),
            pcie_width_max: e(&err),
            pcie_replay_counter: e(&err),
            persistence_mode: e(&err),
            mig_mode: e(&err),
            compute_mode: e(&err),
            processes: e(&err),
            ecc_enabled: e(&err),
            ecc_volatile_corrected: e(&err),
            ecc_volatile_uncorrected: e(&err),
            ecc_aggregate_corrected: e(&err),
            ecc_aggregate_uncorrected: e(&err),
            retired_pages_sbe: e(&err),
            retired_pages_dbe: e(&err),
            retired_pages_pending: e(&err),
            remapped_rows_correctable: e(&err),
            remapped_rows_uncorrectable: e(&err),
            remap_pending: e(&err),
            remap_failure: e(&err),
            clock_event_reasons: e(&err),
            violation_thermal_ns: e(&err),
            violation_power_ns: e(&err),
            inforom_valid: e(&err),
            nvlinks: e(&err),
            recovery_action: e(&err),
        }
    }

    /// The GPU's identity part.
    pub fn identity(&self) -> DeviceIdentity {
        DeviceIdentity {
            index: self.index,
            uuid: self.uuid.clone(),
            pci: self.pci.clone(),
        }
    }
}

/// CUDA driver version as NVML encodes it (`12040`) → `"12.4"`.
pub fn cuda_version_string(encoded: i32) -> String {
    format!("{}.{}", encoded / 1000, (encoded % 1000) / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_versions_decode_like_nvidia_smi() {
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(11080), "11.8");
        assert_eq!(cuda_version_string(13000), "13.0");
    }

    #[test]
    fn read_errors_explain_themselves() {
        let e = ReadError::new(NvmlReturn::NotSupported);
        assert_eq!(
            e.to_string(),
            "not supported by this GPU or driver (NVML_ERROR_NOT_SUPPORTED)"
        );
        let e = ReadError::with_detail(NvmlReturn::FunctionNotFound, "nvmlDeviceGetFieldValues");
        assert!(e.to_string().ends_with(": nvmlDeviceGetFieldValues"));
        assert!(ReadError::new(NvmlReturn::GpuIsLost).is_gpu_lost());
        assert!(!e.is_gpu_lost());
    }
}
