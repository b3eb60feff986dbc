//! Per-GPU queries that fill arrays or answer per item: running processes, retired pages, field values,
//! NVLink state and error counters.

// Matching on nvml.h's constants by their C names.
#![allow(non_upper_case_globals)]

use std::ffi::{c_int, c_uint, c_ulonglong};

use gpu_fixture::{NvLinkCounter, NvmlCall, NvmlReturn};
use nvml_wrapper_sys::bindings::*;

use crate::device::now_micros;
use crate::ffi::{exports, out};
use crate::state::query;
use crate::values::{counter, enable_state, field_value, flag, fx, retired_page, uint};

/// `nvmlProcessInfo_t.gpuInstanceId`/`computeInstanceId` outside MIG.
const NO_INSTANCE: c_uint = 0xFFFF_FFFF;

/// The NVML sizing protocol for array queries: when `capacity` is smaller than `needed`, report the size
/// and fail with `INSUFFICIENT_SIZE` (success when nothing needs to be returned).
fn fits(needed: usize, capacity: &mut c_uint, array_is_null: bool) -> Fits {
    if needed == 0 {
        *capacity = 0;
        return Fits::Empty;
    }
    if array_is_null || (*capacity as usize) < needed {
        *capacity = needed as c_uint;
        return Fits::TooSmall;
    }
    *capacity = needed as c_uint;
    Fits::Yes
}

/// Whether an array answer fits the caller's buffer.
enum Fits {
    Empty,
    TooSmall,
    Yes,
}

exports! {
    /// Used memory `None` in the fixture → `NVML_VALUE_NOT_AVAILABLE`, as under MIG or without permission.
    fn nvmlDeviceGetComputeRunningProcesses_v3(
        device: nvmlDevice_t,
        info_count: *mut c_uint,
        infos: *mut nvmlProcessInfo_t,
    ) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let count = unsafe { out(info_count) }?;
        let processes = query(device, |g, _| fx(&g.processes))?;
        match fits(processes.len(), count, infos.is_null()) {
            Fits::Empty => Ok(()),
            Fits::TooSmall => Err(NvmlReturn::InsufficientSize),
            Fits::Yes => {
                for (i, p) in processes.iter().enumerate() {
                    let info = nvmlProcessInfo_t {
                        pid: p.pid,
                        usedGpuMemory: p.used_memory_bytes.unwrap_or(NVML_VALUE_NOT_AVAILABLE as u64),
                        gpuInstanceId: NO_INSTANCE,
                        computeInstanceId: NO_INSTANCE,
                    };
                    // SAFETY: `infos` holds at least `processes.len()` entries (checked by `fits`).
                    unsafe { infos.add(i).write(info) };
                }
                Ok(())
            }
        }
    }

    fn nvmlDeviceGetRetiredPages(
        device: nvmlDevice_t,
        cause: nvmlPageRetirementCause_t,
        page_count: *mut c_uint,
        addresses: *mut c_ulonglong,
    ) {
        // SAFETY: the caller passes valid arrays of `*page_count` entries, or null (nvml.h).
        unsafe { retired_pages(device, cause, page_count, addresses, std::ptr::null_mut()) }
    }

    fn nvmlDeviceGetRetiredPages_v2(
        device: nvmlDevice_t,
        cause: nvmlPageRetirementCause_t,
        page_count: *mut c_uint,
        addresses: *mut c_ulonglong,
        timestamps: *mut c_ulonglong,
    ) {
        // SAFETY: as above.
        unsafe { retired_pages(device, cause, page_count, addresses, timestamps) }
    }

    fn nvmlDeviceGetRetiredPagesPendingStatus(device: nvmlDevice_t, is_pending: *mut nvmlEnableState_t) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let out = unsafe { out(is_pending) }?;
        *out = enable_state(flag(device, NvmlCall::RetiredPagesPendingStatus)?);
        Ok(())
    }

    /// Each field answers on its own (`nvmlReturn` per entry); the call itself fails only for the GPU.
    fn nvmlDeviceGetFieldValues(device: nvmlDevice_t, values_count: c_int, values: *mut nvmlFieldValue_t) {
        let count = usize::try_from(values_count).map_err(|_| NvmlReturn::InvalidArgument)?;
        if values.is_null() || count == 0 {
            return Err(NvmlReturn::InvalidArgument);
        }
        // SAFETY: the caller passes `values_count` initialised entries (nvml.h).
        let values = unsafe { std::slice::from_raw_parts_mut(values, count) };
        query(device, |g, t| {
            for v in values.iter_mut() {
                v.timestamp = now_micros() as i64;
                v.latencyUsec = 0;
                match field_value(g, v.fieldId, t) {
                    Ok(value) => {
                        v.nvmlReturn = crate::ffi::SUCCESS;
                        v.valueType = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
                        v.value = nvmlValue_t { uiVal: value };
                    }
                    Err(code) => v.nvmlReturn = code.code(),
                }
            }
            Ok(())
        })
    }

    /// Links past the fixture's `links` answer `INVALID_ARGUMENT`, as on a part with fewer links.
    fn nvmlDeviceGetNvLinkState(device: nvmlDevice_t, link: c_uint, is_active: *mut nvmlEnableState_t) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let out = unsafe { out(is_active) }?;
        let active = query(device, |g, _| {
            let links = fx(&g.nvlinks)?;
            if link >= links.links {
                return Err(NvmlReturn::InvalidArgument);
            }
            fx(&links.link(link).active())
        })?;
        *out = enable_state(active);
        Ok(())
    }

    fn nvmlDeviceGetNvLinkErrorCounter(
        device: nvmlDevice_t,
        link: c_uint,
        counter_type: nvmlNvLinkErrorCounter_t,
        value: *mut c_ulonglong,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(value) }?;
        *out = query(device, |g, t| {
            let links = fx(&g.nvlinks)?;
            if link >= links.links {
                return Err(NvmlReturn::InvalidArgument);
            }
            let which = NvLinkCounter::ALL
                .into_iter()
                .find(|c| c.nvml_value() == counter_type)
                .ok_or(NvmlReturn::NotSupported)?;
            counter(&links.link(link).counter(which), t)
        })?;
        Ok(())
    }
}

/// Both retired-pages calls: `timestamps` null for the v1 call.
///
/// # Safety
/// `page_count` is null or valid; `addresses` (and `timestamps` when not null) hold `*page_count` entries.
unsafe fn retired_pages(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> Result<(), NvmlReturn> {
    // SAFETY: guaranteed by the caller.
    let count = unsafe { out(page_count) }?;
    let pages = uint(
        device,
        NvmlCall::RetiredPages { cause },
        NvmlReturn::InvalidArgument,
    )?;
    match fits(pages as usize, count, addresses.is_null()) {
        Fits::Empty => Ok(()),
        Fits::TooSmall => Err(NvmlReturn::InsufficientSize),
        Fits::Yes => {
            for i in 0..pages {
                let (address, timestamp) = retired_page(i);
                // SAFETY: both arrays hold at least `pages` entries (checked by `fits`).
                unsafe {
                    addresses.add(i as usize).write(address);
                    if !timestamps.is_null() {
                        timestamps.add(i as usize).write(timestamp);
                    }
                }
            }
            Ok(())
        }
    }
}
