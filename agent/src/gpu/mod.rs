//! GPU backends: the one trait the tools read GPUs through, with the real NVML implementation and the
//! mock fleets behind it. Nothing above this module knows about NVML.

pub mod mock;
pub mod model;
pub mod nvml;
pub mod pci_bus;

pub use model::*;

/// Reads GPU snapshots. Implementations block (NVML is synchronous FFI): callers run them off the async
/// executor.
pub trait GpuBackend: Send + Sync + 'static {
    /// Where this backend's data comes from.
    fn source(&self) -> DataSource;

    /// Reads every value of the GPUs `filter` selects.
    fn snapshot(&self, filter: GpuFilter) -> Result<NodeSnapshot, BackendError>;

    /// Reads only the GPUs' identities (UUID, PCI address): cheap, for attributing kernel-log lines.
    fn identities(&self) -> Result<Vec<DeviceIdentity>, BackendError>;
}

/// Why a backend could not read the node at all (as opposed to one value of one GPU).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// `libnvidia-ml.so.1` could not be loaded.
    #[error(
        "NVML library {library} could not be loaded ({cause}). The container was most likely not \
         started with the NVIDIA runtime, so the driver's libraries were not injected. Check: \
         `kubectl get runtimeclass nvidia` exists and the pod has `runtimeClassName: nvidia` with \
         NVIDIA_VISIBLE_DEVICES=all (or a GPU resource request / DRA claim); the node's \
         nvidia-container-runtime is configured; or pass --nvml-lib PATH. To try the agent without a \
         GPU, run with --nvml-mode=mock."
    )]
    LibraryNotLoaded { library: String, cause: String },
    /// `nvmlInit` failed.
    #[error("NVML failed to initialize: {error}. {hint}")]
    InitFailed { error: ReadError, hint: String },
    /// `nvmlDeviceGetCount` failed.
    #[error("NVML could not count the GPUs: {0}. Check the driver with `nvidia-smi` on the node.")]
    DeviceCount(ReadError),
    /// The caller asked for a GPU index the node does not have.
    #[error("GPU index {index} does not exist: NVML reports {count} GPU(s) (indices 0..{count})")]
    NoSuchGpu { index: u32, count: u32 },
}

impl BackendError {
    /// The `InitFailed` error with advice matching its code.
    pub fn init_failed(error: ReadError) -> BackendError {
        let hint = match error.code {
            NvmlReturn::DriverNotLoaded => {
                "The NVIDIA kernel driver is not loaded on this node: check `lsmod | grep nvidia` and the \
                 GPU operator's driver pod."
            }
            NvmlReturn::NoPermission => {
                "The container may not access /dev/nvidia*: use the NVIDIA runtime class, a GPU resource \
                 request or a DRA claim (see the operator's status for the chosen mode)."
            }
            NvmlReturn::LibRmVersionMismatch => {
                "libnvidia-ml and the loaded kernel driver differ in version (driver upgraded without \
                 reboot): reload the driver or reboot the node."
            }
            NvmlReturn::Unknown => {
                "\"Unknown Error\" inside a container after a host `systemctl daemon-reload` means the \
                 container lost its device access (nvidia-container-toolkit cgroup issue), not that a GPU \
                 is broken: restart the agent pod."
            }
            _ => "Check the node with `nvidia-smi`.",
        };
        BackendError::InitFailed {
            error,
            hint: hint.to_string(),
        }
    }
}
