//! The real backend: reads GPUs through the NVIDIA driver's `libnvidia-ml.so.1` with nvml-wrapper. The one
//! place the agent loads NVML; it initializes it once per backend (one per process) and shares it.
//!
//! Construction does no I/O: the first call loads and initializes the library, so a hung driver delays
//! that call (which the server runs off the executor, under its deadline), never the server's start.
//! A library that cannot be loaded or initialized does not stop the agent: the backend keeps the error,
//! every call returns it (actionable: which library, the likely cause), and a call made at least
//! [`INIT_RETRY_INTERVAL`] after the last attempt tries again, so a driver that appears later is found.

mod device;
mod error;
mod raw;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;

use super::pci_bus::{self, DEFAULT_PCI_DEVICES_DIR};
use super::*;
use error::{init_error, read_error};

/// The library the NVIDIA container runtime injects (`--nvml-lib` overrides it).
pub const DEFAULT_NVML_LIBRARY: &str = "libnvidia-ml.so.1";

/// How long a failed initialization is remembered before a call tries again (a retry is a `dlopen`,
/// cheap, but not worth doing on every request).
pub const INIT_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Every NVML C function this backend can call, directly or through nvml-wrapper (including the
/// wrapper's own `nvmlInit_v2`, `nvmlSystemGetDriverVersion` at init, and `nvmlShutdown` on drop).
/// The fake `libnvidia-ml` must export each; a test checks that, and that nothing else is called.
pub const NVML_SYMBOLS: &[&str] = &[
    "nvmlInit_v2",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetSerial",
    "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetArchitecture",
    "nvmlDeviceGetCudaComputeCapability",
    "nvmlDeviceGetVbiosVersion",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetTemperatureThreshold",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetMaxPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetPcieReplayCounter",
    "nvmlDeviceGetPersistenceMode",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetComputeMode",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetEccMode",
    "nvmlDeviceGetTotalEccErrors",
    "nvmlDeviceGetRetiredPages",
    "nvmlDeviceGetRetiredPages_v2",
    "nvmlDeviceGetRetiredPagesPendingStatus",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetViolationStatus",
    "nvmlDeviceValidateInforom",
    "nvmlDeviceGetNvLinkState",
    "nvmlDeviceGetNvLinkErrorCounter",
];

/// A [`GpuBackend`] over the NVIDIA driver.
pub struct NvmlBackend {
    library: OsString,
    options: NvmlOptions,
    state: Mutex<InitState>,
}

/// Settings other than the library, with production defaults; tests point them elsewhere.
#[derive(Clone, Debug)]
pub struct NvmlOptions {
    /// Where NVIDIA GPUs on the PCI bus are listed ([`DEFAULT_PCI_DEVICES_DIR`]).
    pub pci_devices_dir: PathBuf,
    /// How long a failed initialization is remembered ([`INIT_RETRY_INTERVAL`]).
    pub init_retry_interval: Duration,
}

impl Default for NvmlOptions {
    fn default() -> Self {
        NvmlOptions {
            pci_devices_dir: DEFAULT_PCI_DEVICES_DIR.into(),
            init_retry_interval: INIT_RETRY_INTERVAL,
        }
    }
}

enum InitState {
    NotYet,
    Ready(Arc<Nvml>),
    Failed { error: BackendError, at: Instant },
}

impl NvmlBackend {
    /// A backend over `library` (a name the dynamic loader resolves, or a path), loaded by the first
    /// call. Never fails: a load or init error is returned by every call until a retry succeeds.
    pub fn new(library: &OsStr) -> NvmlBackend {
        NvmlBackend::with_options(library, NvmlOptions::default())
    }

    /// As [`NvmlBackend::new`], with other settings.
    pub fn with_options(library: &OsStr, options: NvmlOptions) -> NvmlBackend {
        NvmlBackend {
            library: library.to_owned(),
            options,
            state: Mutex::new(InitState::NotYet),
        }
    }

    /// The initialized library, or why there is none (retrying when the last attempt is old enough).
    fn nvml(&self) -> Result<Arc<Nvml>, BackendError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            InitState::Ready(nvml) => return Ok(Arc::clone(nvml)),
            InitState::Failed { error, at } if at.elapsed() < self.options.init_retry_interval => {
                return Err(error.clone());
            }
            InitState::NotYet | InitState::Failed { .. } => {}
        }
        let result = initialize(&self.library);
        *state = match &result {
            Ok(nvml) => InitState::Ready(Arc::clone(nvml)),
            Err(error) => InitState::Failed {
                error: error.clone(),
                at: Instant::now(),
            },
        };
        result
    }

    fn device_count(nvml: &Nvml) -> Result<u32, BackendError> {
        nvml.device_count()
            .map_err(|e| BackendError::DeviceCount(read_error(e)))
    }
}

fn initialize(library: &OsStr) -> Result<Arc<Nvml>, BackendError> {
    match Nvml::builder().lib_path(library).init() {
        Ok(nvml) => {
            tracing::info!(library = %library.to_string_lossy(), "NVML initialized");
            Ok(Arc::new(nvml))
        }
        Err(e) => {
            let error = init_error(library, e);
            tracing::warn!(%error, "NVML unavailable; GPU tools report this error");
            Err(error)
        }
    }
}

impl GpuBackend for NvmlBackend {
    fn source(&self) -> DataSource {
        DataSource::Nvml
    }

    fn snapshot(&self, filter: GpuFilter) -> Result<NodeSnapshot, BackendError> {
        let nvml = self.nvml()?;
        let count = Self::device_count(&nvml)?;
        if let GpuFilter::Index(index) = filter
            && index >= count
        {
            return Err(BackendError::NoSuchGpu { index, count });
        }
        Ok(NodeSnapshot {
            driver_version: nvml.sys_driver_version().map_err(read_error),
            cuda_driver_version: nvml
                .sys_cuda_driver_version()
                .map(cuda_version_string)
                .map_err(read_error),
            nvml_version: nvml.sys_nvml_version().map_err(read_error),
            device_count: count,
            devices: (0..count)
                .filter(|i| filter.includes(*i))
                .map(|i| device::read_device(&nvml, i))
                .collect(),
            pci_gpu_functions: pci_bus::scan(&self.options.pci_devices_dir),
        })
    }

    fn identities(&self) -> Result<Vec<DeviceIdentity>, BackendError> {
        let nvml = self.nvml()?;
        let count = Self::device_count(&nvml)?;
        Ok((0..count)
            .map(|i| device::read_identity(&nvml, i))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_reported_by_every_call_not_at_construction() {
        let backend = NvmlBackend::new(OsStr::new("/nonexistent/libnvidia-ml.so.1"));
        let e = backend.snapshot(GpuFilter::All).unwrap_err();
        let BackendError::LibraryNotLoaded { library, cause } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(library, "/nonexistent/libnvidia-ml.so.1");
        assert!(cause.contains("No such file"), "{cause}");
        let text = e.to_string();
        assert!(text.contains("NVIDIA runtime"), "{text}");
        assert!(text.contains("--nvml-mode=mock"), "{text}");
        assert_eq!(backend.identities().unwrap_err(), e);
        assert_eq!(backend.source(), DataSource::Nvml);
    }

    #[test]
    fn the_symbol_list_has_no_duplicates() {
        let mut names = NVML_SYMBOLS.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NVML_SYMBOLS.len());
        assert!(names.iter().all(|n| n.starts_with("nvml")));
    }
}
