//! The GPU snapshot: plain data read once from a backend (NVML or mock), the only thing the analysis
//! and tool layers ever see of a GPU. A value that could not be read keeps the NVML reason.

use std::fmt;

pub use gpu_fixture::{
    Architecture, ClockEventReason, ComputeCapability, ComputeMode, NvmlCall, NvmlReturn,
    PciAddress, ValueKind, kind,
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

/// What the agent reads for each kind of GPU value (the table's kinds, in [`gpu_fixture::kind`]).
pub trait ReadingKind: ValueKind {
    /// The snapshot's type for a value of this kind, in the snapshot's units.
    type Reading: Clone + fmt::Debug + PartialEq;
}

macro_rules! reading_kinds {
    ($($kind:ident => $reading:ty),* $(,)?) => {$(
        impl ReadingKind for kind::$kind {
            type Reading = $reading;
        }
    )*};
}

reading_kinds! {
    Text => String,
    Count => u32,
    Flag => bool,
    Cumulative => u64,
    Watts => f64,
    Arch => Architecture,
    Compute => ComputeMode,
    Reasons => u64,
    Capability => ComputeCapability,
    Pci => PciInfo,
    Memory => MemoryInfo,
    Utilization => Utilization,
    Mig => MigMode,
    Inforom => bool,
    NvLinks => Vec<NvLinkSnapshot>,
    Processes => Vec<GpuProcess>,
}

/// Writes [`DeviceSnapshot`] from the table of GPU values: one reading per value.
macro_rules! device_snapshot {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $kind:ident, unit $unit:literal, nvml $call:expr, fixture $key:literal,
            output [$($(#[doc = $odoc:literal])* $okey:ident: $oty:ty),* $(,)?];
    )*) => {
        /// Everything read from one GPU: one reading per row of the table of GPU values
        /// ([`gpu_fixture::gpu_values!`]). Each value is read by one NVML call and fails on its own.
        #[derive(Clone, Debug, PartialEq)]
        pub struct DeviceSnapshot {
            pub index: u32,
            /// Getting the device handle itself; when it fails every other value carries the same error.
            pub handle: Reading<()>,
            $(
                $(#[doc = $doc])*
                pub $name: Reading<<kind::$kind as ReadingKind>::Reading>,
            )*
        }

        impl DeviceSnapshot {
            /// A GPU of which nothing could be read: every value carries `err` (a lost GPU is still
            /// listed).
            pub fn unreachable(index: u32, handle: Reading<()>, err: ReadError) -> DeviceSnapshot {
                DeviceSnapshot {
                    index,
                    handle,
                    $($name: Err(err.clone()),)*
                }
            }
        }
    };
}
gpu_fixture::gpu_values!(device_snapshot);

impl DeviceSnapshot {
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
