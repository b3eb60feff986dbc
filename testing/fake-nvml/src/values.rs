//! Pure conversions from fixture values (the agent's units) to what NVML returns (its units and codes).

use std::time::Duration;

use std::ffi::c_uint;

use gpu_fixture::{ComputeCapability, Counter, FixtureGpu, Fx, NvmlAnswer, NvmlCall, NvmlReturn};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlEnableState_enum_NVML_FEATURE_DISABLED,
    nvmlEnableState_enum_NVML_FEATURE_ENABLED, nvmlEnableState_t,
};

use crate::ffi::NvmlResult;
use crate::state::query;

/// A fixture value as its NVML call's result.
pub fn fx<T: Clone>(value: &Fx<T>) -> NvmlResult<T> {
    value.as_result().cloned()
}

/// A counter's reading `elapsed` after the fixture was loaded.
pub fn counter(value: &Fx<Counter>, elapsed: Duration) -> NvmlResult<u64> {
    value.as_result().map(|c| c.value_at(elapsed))
}

/// `"12.4"` → NVML's CUDA driver version encoding `12040` (1000 × major + 10 × minor).
pub fn cuda_version_code(version: &str) -> NvmlResult<i32> {
    let cc = ComputeCapability::parse(version).map_err(|_| NvmlReturn::Unknown)?;
    i32::try_from(cc.major * 1000 + cc.minor * 10).map_err(|_| NvmlReturn::Unknown)
}

/// A bool as `nvmlEnableState_t`.
pub fn enable_state(on: bool) -> nvmlEnableState_t {
    if on {
        nvmlEnableState_enum_NVML_FEATURE_ENABLED
    } else {
        nvmlEnableState_enum_NVML_FEATURE_DISABLED
    }
}

/// Retired page `i`'s synthetic (address, timestamp): distinct page-aligned addresses, one a day.
pub fn retired_page(i: u32) -> (u64, u64) {
    (
        0x0000_0040_0000_0000 + u64::from(i) * 0x1000,
        1_700_000_000 + u64::from(i) * 86_400,
    )
}

/// The table's answer to `call` for the GPU behind `device`, or `missing` when no value is read by
/// `call` (an argument the fixture has no value for).
fn answer(device: nvmlDevice_t, call: NvmlCall, missing: NvmlReturn) -> NvmlResult<NvmlAnswer> {
    query(device, |g, t| {
        g.nvml_answer(call, t).unwrap_or(Err(missing))
    })
}

/// A number the table answers `call` with.
pub fn number(device: nvmlDevice_t, call: NvmlCall, missing: NvmlReturn) -> NvmlResult<u64> {
    match answer(device, call, missing)? {
        NvmlAnswer::Number(n) => Ok(n),
        NvmlAnswer::Text(_) => Err(NvmlReturn::Unknown),
    }
}

/// A number as an `unsigned int` (saturating, as NVML's 32-bit counters do).
pub fn uint(device: nvmlDevice_t, call: NvmlCall, missing: NvmlReturn) -> NvmlResult<c_uint> {
    number(device, call, missing).map(|n| c_uint::try_from(n).unwrap_or(c_uint::MAX))
}

/// An on/off state the table answers `call` with.
pub fn flag(device: nvmlDevice_t, call: NvmlCall) -> NvmlResult<bool> {
    number(device, call, NvmlReturn::NotSupported).map(|n| n != 0)
}

/// A string the table answers `call` with.
pub fn text(device: nvmlDevice_t, call: NvmlCall) -> NvmlResult<String> {
    match answer(device, call, NvmlReturn::NotSupported)? {
        NvmlAnswer::Text(s) => Ok(s),
        NvmlAnswer::Number(_) => Err(NvmlReturn::Unknown),
    }
}

/// The answer to one `nvmlFieldValue_t` request: the fields the table reads, each an unsigned int as
/// the driver reports them; any other field id is `NOT_SUPPORTED`, as on a driver that lacks it.
pub fn field_value(gpu: &FixtureGpu, id: u32, elapsed: Duration) -> NvmlResult<u32> {
    let call = NvmlCall::FieldValues { field_id: id };
    match gpu
        .nvml_answer(call, elapsed)
        .unwrap_or(Err(NvmlReturn::NotSupported))?
    {
        NvmlAnswer::Number(n) => u32::try_from(n).map_err(|_| NvmlReturn::Unknown),
        NvmlAnswer::Text(_) => Err(NvmlReturn::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_fixture::Fixture;

    #[test]
    fn units_convert_like_the_driver() {
        use gpu_fixture::milliwatts;
        assert_eq!(milliwatts(71.52), 71_520);
        assert_eq!(milliwatts(700.0), 700_000);
        assert_eq!(milliwatts(0.0004), 0);
        assert_eq!(milliwatts(-3.0), 0);
        assert_eq!(cuda_version_code("12.4"), Ok(12040));
        assert_eq!(cuda_version_code("13.0"), Ok(13000));
        assert_eq!(cuda_version_code("twelve"), Err(NvmlReturn::Unknown));
    }

    #[test]
    fn field_values_follow_the_fixture_per_field() {
        let f = Fixture::from_yaml(
            "node: {}\ngpus: [{remapped_rows_correctable: 3, remap_pending: true, remap_failure: {error: NO_PERMISSION}, recovery_action: 4}]",
        )
        .unwrap();
        let g = &f.gpus[0];
        let field = |id| field_value(g, id, Duration::ZERO);
        assert_eq!(field(142), Ok(3));
        assert_eq!(field(143), Err(NvmlReturn::NotSupported));
        assert_eq!(field(144), Ok(1));
        assert_eq!(field(145), Err(NvmlReturn::NoPermission));
        assert_eq!(field(230), Ok(4));
        assert_eq!(field(94), Err(NvmlReturn::NotSupported));
    }

    #[test]
    fn the_tables_nvml_constants_are_nvml_hs() {
        use gpu_fixture::nvml_h::*;
        use nvml_wrapper_sys::bindings::*;
        assert_eq!(
            NVML_TEMPERATURE_GPU,
            nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU
        );
        assert_eq!(
            NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
            nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN
        );
        assert_eq!(
            NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
            nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        );
        assert_eq!(NVML_CLOCK_SM, nvmlClockType_enum_NVML_CLOCK_SM);
        assert_eq!(NVML_CLOCK_MEM, nvmlClockType_enum_NVML_CLOCK_MEM);
        assert_eq!(
            NVML_MEMORY_ERROR_TYPE_CORRECTED,
            nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED
        );
        assert_eq!(
            NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        );
        assert_eq!(NVML_VOLATILE_ECC, nvmlEccCounterType_enum_NVML_VOLATILE_ECC);
        assert_eq!(
            NVML_AGGREGATE_ECC,
            nvmlEccCounterType_enum_NVML_AGGREGATE_ECC
        );
        assert_eq!(
            NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
            nvmlPageRetirementCause_enum_NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        );
        assert_eq!(
            NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
            nvmlPageRetirementCause_enum_NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
        );
        assert_eq!(
            NVML_PERF_POLICY_POWER,
            nvmlPerfPolicyType_enum_NVML_PERF_POLICY_POWER
        );
        assert_eq!(
            NVML_PERF_POLICY_THERMAL,
            nvmlPerfPolicyType_enum_NVML_PERF_POLICY_THERMAL
        );
        assert_eq!(NVML_FI_DEV_REMAPPED_COR, field_id::NVML_FI_DEV_REMAPPED_COR);
        assert_eq!(NVML_FI_DEV_REMAPPED_UNC, field_id::NVML_FI_DEV_REMAPPED_UNC);
        assert_eq!(
            NVML_FI_DEV_REMAPPED_PENDING,
            field_id::NVML_FI_DEV_REMAPPED_PENDING
        );
        assert_eq!(
            NVML_FI_DEV_REMAPPED_FAILURE,
            field_id::NVML_FI_DEV_REMAPPED_FAILURE
        );
        assert_eq!(
            NVML_FI_DEV_GET_GPU_RECOVERY_ACTION,
            field_id::NVML_FI_DEV_GET_GPU_RECOVERY_ACTION
        );
    }
}
