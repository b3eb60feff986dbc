//! nvml-wrapper's errors in the snapshot's vocabulary: every `NvmlError` becomes the `ReadError` with the
//! same NVML code (plus a detail where the wrapper knows more), and init failures become the
//! `BackendError` that tells the operator what to fix.

use std::ffi::OsStr;

use nvml_wrapper::error::NvmlError;

use crate::gpu::{BackendError, NvmlReturn, ReadError};

/// One failed NVML call as a [`ReadError`], code for code.
pub fn read_error(error: NvmlError) -> ReadError {
    use NvmlReturn as R;
    #[allow(deprecated)] // `AlreadyInitialized`: NVML no longer returns it, but it is still a code.
    let code = match error {
        NvmlError::Uninitialized => R::Uninitialized,
        NvmlError::InvalidArg => R::InvalidArgument,
        NvmlError::NotSupported => R::NotSupported,
        NvmlError::NoPermission => R::NoPermission,
        NvmlError::AlreadyInitialized => R::AlreadyInitialized,
        NvmlError::NotFound => R::NotFound,
        NvmlError::InsufficientSize(None) => R::InsufficientSize,
        NvmlError::InsufficientSize(Some(size)) => {
            return ReadError::with_detail(R::InsufficientSize, format!("needs {size}"));
        }
        NvmlError::InsufficientPower => R::InsufficientPower,
        NvmlError::DriverNotLoaded => R::DriverNotLoaded,
        NvmlError::Timeout => R::Timeout,
        NvmlError::IrqIssue => R::IrqIssue,
        NvmlError::LibraryNotFound => R::LibraryNotFound,
        NvmlError::FunctionNotFound => R::FunctionNotFound,
        NvmlError::CorruptedInfoROM => R::CorruptedInforom,
        NvmlError::GpuLost => R::GpuIsLost,
        NvmlError::ResetRequired => R::ResetRequired,
        NvmlError::OperatingSystem => R::OperatingSystem,
        NvmlError::LibRmVersionMismatch => R::LibRmVersionMismatch,
        NvmlError::InUse => R::InUse,
        NvmlError::InsufficientMemory => R::Memory,
        NvmlError::NoData => R::NoData,
        NvmlError::VgpuEccNotSupported => R::VgpuEccNotSupported,
        NvmlError::Unknown => R::Unknown,
        // The wrapper reports return codes newer than itself (23 INSUFFICIENT_RESOURCES … 29
        // INVALID_STATE) as unexpected variants; anything else is a value NVML should not return.
        NvmlError::UnexpectedVariant(value) => {
            return match NvmlReturn::from_code(value) {
                Some(code) if code != R::Unknown => ReadError::new(code),
                _ => ReadError::with_detail(R::Unknown, format!("NVML returned {value}")),
            };
        }
        NvmlError::FailedToLoadSymbol(message) => {
            return ReadError::with_detail(R::FunctionNotFound, missing_symbol(&message));
        }
        NvmlError::LibloadingError(e) => {
            return ReadError::with_detail(R::LibraryNotFound, e.to_string());
        }
        other @ (NvmlError::Utf8Error(_)
        | NvmlError::NulError(_)
        | NvmlError::StringTooLong { .. }
        | NvmlError::IncorrectBits(_)
        | NvmlError::SetReleaseFailed
        | NvmlError::GetPciInfoFailed
        | NvmlError::PciInfoToCFailed) => {
            return ReadError::with_detail(R::Unknown, other.to_string());
        }
    };
    ReadError::new(code)
}

/// The symbol name in libloading's "…: undefined symbol: nvmlFoo" message (the whole message when it
/// has another shape).
fn missing_symbol(message: &str) -> String {
    match message.rsplit_once("undefined symbol: ") {
        Some((_, symbol)) => symbol.trim().to_string(),
        None => message.to_string(),
    }
}

/// Why `Nvml::init` failed, as the error every GPU tool reports until a retry succeeds.
pub fn init_error(library: &OsStr, error: NvmlError) -> BackendError {
    let library = library.to_string_lossy().into_owned();
    match error {
        NvmlError::LibloadingError(e) => BackendError::LibraryNotLoaded {
            library,
            cause: e.to_string(),
        },
        NvmlError::FailedToLoadSymbol(message) => BackendError::LibraryNotLoaded {
            library,
            cause: format!(
                "it lacks {}, so it is not a usable NVML library",
                missing_symbol(&message)
            ),
        },
        other => BackendError::init_failed(read_error(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn every_nvml_code_keeps_its_code() {
        let cases = [
            (NvmlError::Uninitialized, R::Uninitialized),
            (NvmlError::InvalidArg, R::InvalidArgument),
            (NvmlError::NotSupported, R::NotSupported),
            (NvmlError::NoPermission, R::NoPermission),
            (NvmlError::AlreadyInitialized, R::AlreadyInitialized),
            (NvmlError::NotFound, R::NotFound),
            (NvmlError::InsufficientSize(None), R::InsufficientSize),
            (NvmlError::InsufficientPower, R::InsufficientPower),
            (NvmlError::DriverNotLoaded, R::DriverNotLoaded),
            (NvmlError::Timeout, R::Timeout),
            (NvmlError::IrqIssue, R::IrqIssue),
            (NvmlError::LibraryNotFound, R::LibraryNotFound),
            (NvmlError::FunctionNotFound, R::FunctionNotFound),
            (NvmlError::CorruptedInfoROM, R::CorruptedInforom),
            (NvmlError::GpuLost, R::GpuIsLost),
            (NvmlError::ResetRequired, R::ResetRequired),
            (NvmlError::OperatingSystem, R::OperatingSystem),
            (NvmlError::LibRmVersionMismatch, R::LibRmVersionMismatch),
            (NvmlError::InUse, R::InUse),
            (NvmlError::InsufficientMemory, R::Memory),
            (NvmlError::NoData, R::NoData),
            (NvmlError::VgpuEccNotSupported, R::VgpuEccNotSupported),
            (NvmlError::Unknown, R::Unknown),
        ];
        for (error, code) in cases {
            assert_eq!(read_error(error), ReadError::new(code));
        }
    }

    use NvmlReturn as R;

    #[test]
    fn codes_newer_than_the_wrapper_keep_their_code_and_odd_values_say_so() {
        for code in 23..=29 {
            let e = read_error(NvmlError::UnexpectedVariant(code));
            assert_eq!(e.code.code(), code);
            assert_eq!(e.detail, None);
        }
        assert_eq!(
            read_error(NvmlError::UnexpectedVariant(77)),
            ReadError::with_detail(R::Unknown, "NVML returned 77")
        );
        assert_eq!(
            read_error(NvmlError::UnexpectedVariant(999)),
            ReadError::with_detail(R::Unknown, "NVML returned 999")
        );
    }

    #[test]
    fn a_missing_symbol_names_the_function() {
        let e = read_error(NvmlError::FailedToLoadSymbol(
            "/usr/lib/libnvidia-ml.so.1: undefined symbol: nvmlDeviceGetFieldValues".into(),
        ));
        assert_eq!(
            e,
            ReadError::with_detail(R::FunctionNotFound, "nvmlDeviceGetFieldValues")
        );
        assert!(e.to_string().contains("driver too old"), "{e}");
    }

    #[test]
    fn wrapper_only_errors_become_unknown_with_their_message() {
        let e = read_error(NvmlError::StringTooLong {
            max_len: 4,
            actual_len: 9,
        });
        assert_eq!(e.code, R::Unknown);
        assert!(e.detail.unwrap().contains("max string length was 4"));
        let e = read_error(NvmlError::InsufficientSize(Some(128)));
        assert_eq!(e, ReadError::with_detail(R::InsufficientSize, "needs 128"));
    }

    #[test]
    fn init_failures_tell_what_to_do() {
        let lib = OsStr::new("libnvidia-ml.so.1");
        let e = init_error(
            lib,
            NvmlError::FailedToLoadSymbol("x: undefined symbol: nvmlInit_v2".into()),
        );
        let text = e.to_string();
        assert!(
            text.contains("NVML library libnvidia-ml.so.1 could not be loaded"),
            "{text}"
        );
        assert!(text.contains("lacks nvmlInit_v2"), "{text}");
        assert!(text.contains("runtimeClassName: nvidia"), "{text}");
        let e = init_error(lib, NvmlError::DriverNotLoaded);
        assert_eq!(
            e,
            BackendError::init_failed(ReadError::new(R::DriverNotLoaded))
        );
        assert!(e.to_string().contains("lsmod"), "{e}");
    }
}
