//! Pure conversions from fixture values (the agent's units) to what NVML returns (its units and codes).

use std::time::Duration;

use gpu_fixture::{ComputeCapability, Counter, FixtureGpu, Fx, NvmlReturn};
use nvml_wrapper_sys::bindings::{
    field_id, nvmlEnableState_enum_NVML_FEATURE_DISABLED,
    nvmlEnableState_enum_NVML_FEATURE_ENABLED, nvmlEnableState_t,
};

use crate::ffi::NvmlResult;

/// A fixture value as its NVML call's result.
pub fn fx<T: Clone>(value: &Fx<T>) -> NvmlResult<T> {
    value.as_result().cloned()
}

/// A counter's reading `elapsed` after the fixture was loaded.
pub fn counter(value: &Fx<Counter>, elapsed: Duration) -> NvmlResult<u64> {
    value.as_result().map(|c| c.value_at(elapsed))
}

/// Watts → NVML's milliwatts, rounded to the nearest (saturating at 0 and `u32::MAX`).
pub fn milliwatts(watts: f64) -> u32 {
    (watts * 1000.0).round() as u32
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

/// The answer to one `nvmlFieldValue_t` request: the fields the fixture describes, each an unsigned int
/// as the driver reports them; any other field id is `NOT_SUPPORTED`, as on a driver that lacks it.
pub fn field_value(gpu: &FixtureGpu, id: u32) -> NvmlResult<u32> {
    match id {
        field_id::NVML_FI_DEV_REMAPPED_COR => fx(&gpu.remapped_rows_correctable),
        field_id::NVML_FI_DEV_REMAPPED_UNC => fx(&gpu.remapped_rows_uncorrectable),
        field_id::NVML_FI_DEV_REMAPPED_PENDING => fx(&gpu.remap_pending).map(u32::from),
        field_id::NVML_FI_DEV_REMAPPED_FAILURE => fx(&gpu.remap_failure).map(u32::from),
        field_id::NVML_FI_DEV_GET_GPU_RECOVERY_ACTION => fx(&gpu.recovery_action),
        _ => Err(NvmlReturn::NotSupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_fixture::Fixture;

    #[test]
    fn units_convert_like_the_driver() {
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
        assert_eq!(field_value(g, 142), Ok(3));
        assert_eq!(field_value(g, 143), Err(NvmlReturn::NotSupported));
        assert_eq!(field_value(g, 144), Ok(1));
        assert_eq!(field_value(g, 145), Err(NvmlReturn::NoPermission));
        assert_eq!(field_value(g, 230), Ok(4));
        assert_eq!(field_value(g, 94), Err(NvmlReturn::NotSupported));
    }
}
