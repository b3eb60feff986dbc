//! The few NVML calls made below nvml-wrapper's safe API, because the wrapper hides what we need: the raw
//! clock event reasons mask (it drops unknown bits), the architecture number (it rejects new ones) and
//! field values of every value type (it rejects signed int and unsigned short). All `unsafe` of the NVML
//! backend lives here.

// Matching on nvml.h's constants by their C names.
#![allow(non_upper_case_globals)]

use nvml_wrapper::Device;
use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper_sys::bindings::*;

use crate::gpu::{NvmlReturn, ReadError, Reading};

use super::error::read_error;

/// `nvmlDeviceGetCurrentClocksThrottleReasons`: every bit, including ones newer than the wrapper.
pub fn clock_event_reasons(device: &Device) -> Result<u64, NvmlError> {
    let f = nvml_sym(
        device
            .nvml()
            .lib()
            .nvmlDeviceGetCurrentClocksThrottleReasons
            .as_ref(),
    )?;
    let mut reasons = 0;
    // SAFETY: the handle comes from a live `Device` of the same library; `reasons` is a valid out
    // pointer for the duration of the call.
    nvml_try(unsafe { f(device.handle(), &mut reasons) })?;
    Ok(reasons)
}

/// `nvmlDeviceGetArchitecture`: the `nvmlDeviceArchitecture_t` number.
pub fn architecture(device: &Device) -> Result<u32, NvmlError> {
    let f = nvml_sym(device.nvml().lib().nvmlDeviceGetArchitecture.as_ref())?;
    let mut arch = 0;
    // SAFETY: as above.
    nvml_try(unsafe { f(device.handle(), &mut arch) })?;
    Ok(arch)
}

/// `nvmlDeviceGetFieldValues` for `ids`: one result per field, in order. The call as a whole fails
/// only when the GPU cannot answer at all (then every field carries that error).
pub fn field_values(device: &Device, ids: &[u32]) -> Vec<Reading<u64>> {
    match field_values_call(device, ids) {
        Ok(values) => values.iter().map(field_value).collect(),
        Err(e) => {
            let e = read_error(e);
            ids.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

fn field_values_call(device: &Device, ids: &[u32]) -> Result<Vec<nvmlFieldValue_t>, NvmlError> {
    let f = nvml_sym(device.nvml().lib().nvmlDeviceGetFieldValues.as_ref())?;
    let mut values: Vec<nvmlFieldValue_t> = ids
        .iter()
        .map(|id| {
            // SAFETY: `nvmlFieldValue_t` is plain C data (integers and a union of numbers): all-zero
            // is a valid value.
            let mut v: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = *id;
            v
        })
        .collect();
    let count = i32::try_from(values.len()).map_err(|_| NvmlError::InvalidArg)?;
    // SAFETY: the handle comes from a live `Device`; `values` holds `count` initialised entries that
    // NVML fills in place.
    nvml_try(unsafe { f(device.handle(), count, values.as_mut_ptr()) })?;
    Ok(values)
}

/// One field's result as an unsigned integer (what every field this backend reads is).
fn field_value(v: &nvmlFieldValue_t) -> Reading<u64> {
    nvml_try(v.nvmlReturn).map_err(read_error)?;
    let not_integer = |what: &str| {
        Err(ReadError::with_detail(
            NvmlReturn::Unknown,
            format!(
                "field {} has {what}, expected an unsigned integer",
                v.fieldId
            ),
        ))
    };
    // SAFETY: `valueType` says which union member NVML wrote; each arm reads only that member.
    unsafe {
        match v.valueType {
            nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT => Ok(u64::from(v.value.uiVal)),
            nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG => Ok(v.value.ulVal),
            nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_LONG_LONG => Ok(v.value.ullVal),
            nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_SHORT => Ok(u64::from(v.value.usVal)),
            nvmlValueType_enum_NVML_VALUE_TYPE_SIGNED_INT => {
                u64::try_from(v.value.siVal).or_else(|_| not_integer("a negative value"))
            }
            nvmlValueType_enum_NVML_VALUE_TYPE_SIGNED_LONG_LONG => {
                u64::try_from(v.value.sllVal).or_else(|_| not_integer("a negative value"))
            }
            nvmlValueType_enum_NVML_VALUE_TYPE_DOUBLE => not_integer("a floating-point value"),
            other => not_integer(&format!("value type {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value_type: u32, value: nvmlValue_t, ret: u32) -> nvmlFieldValue_t {
        nvmlFieldValue_t {
            fieldId: 144,
            scopeId: 0,
            timestamp: 0,
            latencyUsec: 0,
            valueType: value_type,
            nvmlReturn: ret,
            value,
        }
    }

    #[test]
    fn field_values_read_every_integer_type_and_keep_per_field_errors() {
        let ok = |t, v| field_value(&sample(t, v, 0));
        assert_eq!(ok(1, nvmlValue_t { uiVal: 7 }), Ok(7));
        assert_eq!(ok(2, nvmlValue_t { ulVal: 8 }), Ok(8));
        assert_eq!(ok(3, nvmlValue_t { ullVal: 1 << 40 }), Ok(1 << 40));
        assert_eq!(ok(4, nvmlValue_t { sllVal: 9 }), Ok(9));
        assert_eq!(ok(5, nvmlValue_t { siVal: 10 }), Ok(10));
        assert_eq!(ok(6, nvmlValue_t { usVal: 11 }), Ok(11));
        let e = ok(5, nvmlValue_t { siVal: -1 }).unwrap_err();
        assert_eq!(e.code, NvmlReturn::Unknown);
        assert!(e.detail.unwrap().contains("field 144 has a negative value"));
        assert!(ok(0, nvmlValue_t { dVal: 1.5 }).is_err());
        assert!(ok(42, nvmlValue_t { uiVal: 1 }).is_err());
        assert_eq!(
            field_value(&sample(1, nvmlValue_t { uiVal: 1 }, 3)),
            Err(ReadError::new(NvmlReturn::NotSupported))
        );
    }
}
