//! FFI plumbing every export shares: no panic crosses the C boundary, null pointers are rejected, and
//! strings are copied out the way NVML does (NUL-terminated, `INSUFFICIENT_SIZE` when the buffer is short).

use std::ffi::{c_char, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};

use gpu_fixture::NvmlReturn;
use nvml_wrapper_sys::bindings::nvmlReturn_t;

/// An export's outcome before it becomes an `nvmlReturn_t`.
pub type NvmlResult<T> = Result<T, NvmlReturn>;

/// `NVML_SUCCESS`.
pub const SUCCESS: nvmlReturn_t = 0;

/// Runs an export's body, turning its result into a return code and a panic into `NVML_ERROR_UNKNOWN`.
pub fn guard(body: impl FnOnce() -> NvmlResult<()>) -> nvmlReturn_t {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code.code(),
        Err(_) => NvmlReturn::Unknown.code(),
    }
}

/// Defines `#[no_mangle] extern "C"` NVML functions returning `nvmlReturn_t`: each records its name and
/// runs its body (an `NvmlResult<()>` expression) under [`guard`].
macro_rules! exports {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block
    )*) => {$(
        $(#[doc = $doc])*
        ///
        /// # Safety
        /// As in `nvml.h`: every pointer argument is null or valid for the access the function makes.
        #[allow(non_snake_case)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> nvml_wrapper_sys::bindings::nvmlReturn_t {
            $crate::state::record(stringify!($name));
            $crate::ffi::guard(move || $body)
        }
    )*};
}
pub(crate) use exports;

/// Borrows an output pointer, or fails with `INVALID_ARGUMENT` when it is null.
///
/// # Safety
/// `p` is null or valid for writes of a `T` for the returned lifetime.
pub unsafe fn out<'a, T>(p: *mut T) -> NvmlResult<&'a mut T> {
    // SAFETY: the caller guarantees `p` is null or valid; null is handled by `as_mut`.
    unsafe { p.as_mut() }.ok_or(NvmlReturn::InvalidArgument)
}

/// Copies `s` and a NUL into `buf` of `len` bytes.
///
/// # Safety
/// `buf` is null or valid for writes of `len` bytes.
pub unsafe fn write_str(buf: *mut c_char, len: c_uint, s: &str) -> NvmlResult<()> {
    if buf.is_null() {
        return Err(NvmlReturn::InvalidArgument);
    }
    let bytes = s.as_bytes();
    if bytes.contains(&0) {
        return Err(NvmlReturn::Unknown);
    }
    if bytes.len() + 1 > len as usize {
        return Err(NvmlReturn::InsufficientSize);
    }
    // SAFETY: `buf` holds at least `len >= bytes.len() + 1` writable bytes (checked above), and a
    // Rust `&str` cannot overlap a C caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_panics_and_errors_into_codes() {
        assert_eq!(guard(|| Ok(())), SUCCESS);
        assert_eq!(guard(|| Err(NvmlReturn::GpuIsLost)), 15);
        assert_eq!(guard(|| panic!("boom")), 999);
    }

    #[test]
    fn strings_are_copied_with_their_nul_or_refused() {
        let mut buf = [1 as c_char; 6];
        // SAFETY: `buf` is a live 6-byte buffer.
        unsafe {
            assert_eq!(write_str(buf.as_mut_ptr(), 6, "abcde"), Ok(()));
            assert_eq!(buf[5], 0);
            assert_eq!(
                write_str(buf.as_mut_ptr(), 6, "abcdef"),
                Err(NvmlReturn::InsufficientSize)
            );
            assert_eq!(
                write_str(std::ptr::null_mut(), 6, "a"),
                Err(NvmlReturn::InvalidArgument)
            );
            assert_eq!(
                out::<u32>(std::ptr::null_mut()).err(),
                Some(NvmlReturn::InvalidArgument)
            );
        }
    }
}
