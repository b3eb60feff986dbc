//! Library lifetime and node-wide queries: init/shutdown, error strings, driver/NVML/CUDA versions,
//! device enumeration.

use std::ffi::{CStr, c_char, c_int, c_uint};

use gpu_fixture::NvmlReturn;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlReturn_t};

use crate::ffi::{exports, out, write_str};
use crate::state;
use crate::values::{cuda_version_code, fx};

exports! {
    /// Loads the fixture on the first reference (or fails with the fixture's `init_error`).
    fn nvmlInit_v2() {
        state::init()
    }

    /// As `nvmlInit_v2`; the flags (`NO_GPUS`, `NO_ATTACH`) change nothing for a fixture.
    fn nvmlInitWithFlags(_flags: c_uint) {
        state::init()
    }

    /// Drops one init reference.
    fn nvmlShutdown() {
        state::shutdown()
    }

    fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) {
        let v = fx(&state::node()?.fixture.node.driver_version)?;
        // SAFETY: the caller passes a buffer of `length` bytes (nvml.h).
        unsafe { write_str(version, length, &v) }
    }

    fn nvmlSystemGetNVMLVersion(version: *mut c_char, length: c_uint) {
        let v = fx(&state::node()?.fixture.node.nvml_version)?;
        // SAFETY: as above.
        unsafe { write_str(version, length, &v) }
    }

    fn nvmlSystemGetCudaDriverVersion_v2(cuda_driver_version: *mut c_int) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let out = unsafe { out(cuda_driver_version) }?;
        *out = cuda_version_code(&fx(&state::node()?.fixture.node.cuda_driver_version)?)?;
        Ok(())
    }

    fn nvmlDeviceGetCount_v2(device_count: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(device_count) }?;
        let node = state::node()?;
        if let Some(code) = node.fixture.node.device_count_error {
            return Err(code);
        }
        *out = node.visible().len() as c_uint;
        Ok(())
    }

    fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, device: *mut nvmlDevice_t) {
        // SAFETY: as above.
        let out = unsafe { out(device) }?;
        *out = state::node()?.handle(index)?;
        Ok(())
    }
}

/// The description NVML gives a return code (a static string, as in the real library).
#[allow(non_snake_case)]
#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    state::record("nvmlErrorString");
    error_string(result).as_ptr()
}

fn error_string(result: nvmlReturn_t) -> &'static CStr {
    let Some(code) = NvmlReturn::from_code(result) else {
        return c"Success";
    };
    match code {
        NvmlReturn::Uninitialized => c"Uninitialized",
        NvmlReturn::InvalidArgument => c"Invalid Argument",
        NvmlReturn::NotSupported => c"Not Supported",
        NvmlReturn::NoPermission => c"Insufficient Permissions",
        NvmlReturn::AlreadyInitialized => c"Already Initialized",
        NvmlReturn::NotFound => c"Not Found",
        NvmlReturn::InsufficientSize => c"Insufficient Size",
        NvmlReturn::InsufficientPower => c"Insufficient External Power",
        NvmlReturn::DriverNotLoaded => c"Driver Not Loaded",
        NvmlReturn::Timeout => c"Timeout",
        NvmlReturn::IrqIssue => c"Interrupt Request Issue",
        NvmlReturn::LibraryNotFound => c"NVML Shared Library Not Found",
        NvmlReturn::FunctionNotFound => c"Function Not Found",
        NvmlReturn::CorruptedInforom => c"Corrupted infoROM",
        NvmlReturn::GpuIsLost => c"GPU is lost",
        NvmlReturn::ResetRequired => c"GPU requires restart",
        NvmlReturn::OperatingSystem => c"The operating system has blocked the request.",
        NvmlReturn::LibRmVersionMismatch => c"RM has detected an NVML/RM version mismatch.",
        NvmlReturn::InUse => c"In use by another client",
        NvmlReturn::Memory => c"Insufficient Memory",
        NvmlReturn::NoData => c"No data",
        NvmlReturn::VgpuEccNotSupported => {
            c"The requested vgpu operation is not available on target device, because ECC is enabled"
        }
        NvmlReturn::InsufficientResources => c"Insufficient resources",
        NvmlReturn::FreqNotSupported => c"Frequency not supported",
        NvmlReturn::ArgumentVersionMismatch => c"Argument version mismatch",
        NvmlReturn::Deprecated => c"Deprecated",
        NvmlReturn::NotReady => c"Not ready",
        NvmlReturn::GpuNotFound => c"GPU not found",
        NvmlReturn::InvalidState => c"Invalid state",
        NvmlReturn::Unknown => c"Unknown Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_description() {
        assert_eq!(error_string(0), c"Success");
        assert_eq!(error_string(15), c"GPU is lost");
        assert_eq!(error_string(123_456), c"Unknown Error");
        for code in NvmlReturn::ALL {
            assert!(!error_string(code.code()).is_empty());
        }
    }
}
