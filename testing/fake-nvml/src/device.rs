//! Per-GPU queries that return one value or one struct: identity, memory, thermals, power, clocks, PCIe,
//! modes, ECC, clock event reasons, violation time, infoROM.

// Matching on nvml.h's constants by their C names.
#![allow(non_upper_case_globals)]

use std::ffi::{c_char, c_int, c_uint, c_ulonglong};

use gpu_fixture::{ClockEventReason, NvmlReturn};
use nvml_wrapper_sys::bindings::*;

use crate::ffi::{exports, out, write_str};
use crate::state::{query, query_enumeration};
use crate::values::{counter, enable_state, fx, milliwatts};

/// `NVML_STRUCT_VERSION(Memory, 2)`: what `nvmlDeviceGetMemoryInfo_v2` requires in `version`.
const MEMORY_V2_VERSION: c_uint = (size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;

/// Copies a fixture string into a caller's buffer.
macro_rules! string_query {
    ($($name:ident => $field:ident),* $(,)?) => {
        exports! {$(
            fn $name(device: nvmlDevice_t, buf: *mut c_char, length: c_uint) {
                let v = query(device, |g, _| fx(&g.$field))?;
                // SAFETY: the caller passes a buffer of `length` bytes (nvml.h).
                unsafe { write_str(buf, length, &v) }
            }
        )*}
    };
}

/// Writes one `unsigned int` the fixture holds.
macro_rules! uint_query {
    ($($name:ident => $field:ident),* $(,)?) => {
        exports! {$(
            fn $name(device: nvmlDevice_t, value: *mut c_uint) {
                // SAFETY: the caller passes a valid pointer or null (nvml.h).
                let out = unsafe { out(value) }?;
                *out = query(device, |g, _| fx(&g.$field))?;
                Ok(())
            }
        )*}
    };
}

string_query! {
    nvmlDeviceGetName => name,
    nvmlDeviceGetUUID => uuid,
    nvmlDeviceGetSerial => serial,
    nvmlDeviceGetVbiosVersion => vbios_version,
}

uint_query! {
    nvmlDeviceGetCurrPcieLinkGeneration => pcie_gen_current,
    nvmlDeviceGetMaxPcieLinkGeneration => pcie_gen_max,
    nvmlDeviceGetCurrPcieLinkWidth => pcie_width_current,
    nvmlDeviceGetMaxPcieLinkWidth => pcie_width_max,
}

exports! {
    fn nvmlDeviceGetPciInfo_v3(device: nvmlDevice_t, pci: *mut nvmlPciInfo_t) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let out = unsafe { out(pci) }?;
        let p = query_enumeration(device, |g, _| fx(&g.pci))?;
        let a = p.bus_id;
        let legacy = format!("{:04x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.device, a.function);
        // SAFETY: both arrays are inside `*out`, with their declared lengths.
        unsafe {
            write_str(out.busIdLegacy.as_mut_ptr(), out.busIdLegacy.len() as c_uint, &legacy)?;
            write_str(out.busId.as_mut_ptr(), out.busId.len() as c_uint, &a.nvml_bus_id())?;
        }
        out.domain = a.domain;
        out.bus = a.bus.into();
        out.device = a.device.into();
        out.pciDeviceId = p.device_id;
        out.pciSubSystemId = p.subsystem_id;
        Ok(())
    }

    fn nvmlDeviceGetArchitecture(device: nvmlDevice_t, arch: *mut nvmlDeviceArchitecture_t) {
        // SAFETY: as above.
        let out = unsafe { out(arch) }?;
        *out = query(device, |g, _| fx(&g.architecture))?.nvml_value();
        Ok(())
    }

    fn nvmlDeviceGetCudaComputeCapability(device: nvmlDevice_t, major: *mut c_int, minor: *mut c_int) {
        // SAFETY: as above.
        let (major, minor) = unsafe { (out(major)?, out(minor)?) };
        let cc = query(device, |g, _| fx(&g.compute_capability))?;
        // Validated when the fixture was loaded.
        let cc = gpu_fixture::ComputeCapability::parse(&cc).map_err(|_| NvmlReturn::Unknown)?;
        *major = cc.major as c_int;
        *minor = cc.minor as c_int;
        Ok(())
    }

    fn nvmlDeviceGetMemoryInfo_v2(device: nvmlDevice_t, memory: *mut nvmlMemory_v2_t) {
        // SAFETY: as above.
        let out = unsafe { out(memory) }?;
        if out.version != MEMORY_V2_VERSION {
            return Err(NvmlReturn::ArgumentVersionMismatch);
        }
        let m = query(device, |g, _| fx(&g.memory))?;
        out.total = m.total_bytes;
        out.reserved = 0;
        out.used = m.used_bytes;
        out.free = m.free();
        Ok(())
    }

    fn nvmlDeviceGetTemperature(device: nvmlDevice_t, sensor: nvmlTemperatureSensors_t, temp: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(temp) }?;
        *out = query(device, |g, _| match sensor {
            nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU => fx(&g.temperature_c),
            _ => Err(NvmlReturn::InvalidArgument),
        })?;
        Ok(())
    }

    fn nvmlDeviceGetTemperatureThreshold(
        device: nvmlDevice_t,
        threshold: nvmlTemperatureThresholds_t,
        temp: *mut c_uint,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(temp) }?;
        *out = query(device, |g, _| match threshold {
            nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SHUTDOWN => fx(&g.temperature_shutdown_c),
            nvmlTemperatureThresholds_enum_NVML_TEMPERATURE_THRESHOLD_SLOWDOWN => fx(&g.temperature_slowdown_c),
            _ => Err(NvmlReturn::NotSupported),
        })?;
        Ok(())
    }

    fn nvmlDeviceGetPowerUsage(device: nvmlDevice_t, power: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(power) }?;
        *out = milliwatts(query(device, |g, _| fx(&g.power_draw_watts))?);
        Ok(())
    }

    fn nvmlDeviceGetEnforcedPowerLimit(device: nvmlDevice_t, limit: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(limit) }?;
        *out = milliwatts(query(device, |g, _| fx(&g.power_limit_watts))?);
        Ok(())
    }

    fn nvmlDeviceGetClockInfo(device: nvmlDevice_t, clock_type: nvmlClockType_t, clock: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(clock) }?;
        *out = query(device, |g, _| match clock_type {
            nvmlClockType_enum_NVML_CLOCK_SM => fx(&g.clock_sm_mhz),
            nvmlClockType_enum_NVML_CLOCK_MEM => fx(&g.clock_memory_mhz),
            _ => Err(NvmlReturn::NotSupported),
        })?;
        Ok(())
    }

    fn nvmlDeviceGetMaxClockInfo(device: nvmlDevice_t, clock_type: nvmlClockType_t, clock: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(clock) }?;
        *out = query(device, |g, _| match clock_type {
            nvmlClockType_enum_NVML_CLOCK_SM => fx(&g.clock_sm_max_mhz),
            nvmlClockType_enum_NVML_CLOCK_MEM => fx(&g.clock_memory_max_mhz),
            _ => Err(NvmlReturn::NotSupported),
        })?;
        Ok(())
    }

    fn nvmlDeviceGetUtilizationRates(device: nvmlDevice_t, utilization: *mut nvmlUtilization_t) {
        // SAFETY: as above.
        let out = unsafe { out(utilization) }?;
        let u = query(device, |g, _| fx(&g.utilization))?;
        out.gpu = u.gpu_percent;
        out.memory = u.memory_percent;
        Ok(())
    }

    fn nvmlDeviceGetPcieReplayCounter(device: nvmlDevice_t, value: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(value) }?;
        let v = query(device, |g, t| counter(&g.pcie_replay_counter, t))?;
        *out = c_uint::try_from(v).unwrap_or(c_uint::MAX);
        Ok(())
    }

    fn nvmlDeviceGetPersistenceMode(device: nvmlDevice_t, mode: *mut nvmlEnableState_t) {
        // SAFETY: as above.
        let out = unsafe { out(mode) }?;
        *out = enable_state(query(device, |g, _| fx(&g.persistence_mode))?);
        Ok(())
    }

    fn nvmlDeviceGetMigMode(device: nvmlDevice_t, current: *mut c_uint, pending: *mut c_uint) {
        // SAFETY: as above.
        let (current, pending) = unsafe { (out(current)?, out(pending)?) };
        let m = query(device, |g, _| fx(&g.mig_mode))?;
        *current = enable_state(m.current);
        *pending = enable_state(m.pending);
        Ok(())
    }

    fn nvmlDeviceGetComputeMode(device: nvmlDevice_t, mode: *mut nvmlComputeMode_t) {
        // SAFETY: as above.
        let out = unsafe { out(mode) }?;
        *out = query(device, |g, _| fx(&g.compute_mode))?.nvml_value();
        Ok(())
    }

    fn nvmlDeviceGetEccMode(device: nvmlDevice_t, current: *mut nvmlEnableState_t, pending: *mut nvmlEnableState_t) {
        // SAFETY: as above.
        let (current, pending) = unsafe { (out(current)?, out(pending)?) };
        let on = query(device, |g, _| fx(&g.ecc_enabled))?;
        *current = enable_state(on);
        *pending = enable_state(on);
        Ok(())
    }

    fn nvmlDeviceGetTotalEccErrors(
        device: nvmlDevice_t,
        error_type: nvmlMemoryErrorType_t,
        counter_type: nvmlEccCounterType_t,
        ecc_counts: *mut c_ulonglong,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(ecc_counts) }?;
        *out = query(device, |g, t| {
            let c = match (error_type, counter_type) {
                (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED, nvmlEccCounterType_enum_NVML_VOLATILE_ECC) => &g.ecc_volatile_corrected,
                (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvmlEccCounterType_enum_NVML_VOLATILE_ECC) => &g.ecc_volatile_uncorrected,
                (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED, nvmlEccCounterType_enum_NVML_AGGREGATE_ECC) => &g.ecc_aggregate_corrected,
                (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvmlEccCounterType_enum_NVML_AGGREGATE_ECC) => &g.ecc_aggregate_uncorrected,
                _ => return Err(NvmlReturn::InvalidArgument),
            };
            counter(c, t)
        })?;
        Ok(())
    }

    fn nvmlDeviceGetCurrentClocksThrottleReasons(device: nvmlDevice_t, reasons: *mut c_ulonglong) {
        // SAFETY: as above.
        let out = unsafe { out(reasons) }?;
        *out = ClockEventReason::mask(&query(device, |g, _| fx(&g.clock_event_reasons))?);
        Ok(())
    }

    fn nvmlDeviceGetViolationStatus(
        device: nvmlDevice_t,
        policy: nvmlPerfPolicyType_t,
        time: *mut nvmlViolationTime_t,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(time) }?;
        out.violationTime = query(device, |g, t| match policy {
            nvmlPerfPolicyType_enum_NVML_PERF_POLICY_POWER => counter(&g.violation_power_ns, t),
            nvmlPerfPolicyType_enum_NVML_PERF_POLICY_THERMAL => counter(&g.violation_thermal_ns, t),
            _ => Err(NvmlReturn::NotSupported),
        })?;
        out.referenceTime = now_micros();
        Ok(())
    }

    /// `inforom_valid: false` → `CORRUPTED_INFOROM`, as the driver reports a bad checksum.
    fn nvmlDeviceValidateInforom(device: nvmlDevice_t) {
        match query(device, |g, _| fx(&g.inforom_valid))? {
            true => Ok(()),
            false => Err(NvmlReturn::CorruptedInforom),
        }
    }
}

/// Microseconds since the Unix epoch (NVML's CPU timestamps).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
