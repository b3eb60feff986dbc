//! Test controls beyond NVML's API, for tests that load the library in-process (where one environment
//! variable cannot differ between tests): choose the fixture, and list the NVML functions called.

use std::ffi::{CStr, c_char, c_uint};

use gpu_fixture::NvmlReturn;

use crate::ffi::{exports, write_str};
use crate::state;

exports! {
    /// Serves `spec` (a fixture path or `builtin:<name>`) from the next init that loads a fixture.
    fn fake_nvml_set_fixture(spec: *const c_char) {
        if spec.is_null() {
            return Err(NvmlReturn::InvalidArgument);
        }
        // SAFETY: the caller passes a NUL-terminated string.
        let spec = unsafe { CStr::from_ptr(spec) };
        let spec = spec.to_str().map_err(|_| NvmlReturn::InvalidArgument)?;
        state::set_fixture_spec(spec.to_string());
        Ok(())
    }

    /// Writes the names of the NVML functions called so far, one per line (`INSUFFICIENT_SIZE` when
    /// `length` is too small).
    fn fake_nvml_called_symbols(buf: *mut c_char, length: c_uint) {
        let names: Vec<&str> = state::called()
            .into_iter()
            .filter(|n| n.starts_with("nvml"))
            .collect();
        // SAFETY: the caller passes a buffer of `length` bytes.
        unsafe { write_str(buf, length, &names.join("\n")) }
    }
}
